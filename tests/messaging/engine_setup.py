"""A clinic with one family, ready to plan and send: shared by the engine tests."""

from __future__ import annotations

import datetime as dt

from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import AutomatedMessage
from tests import factories

# A Wednesday, 10:00 in New York: inside every window.
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def enable(site, kind: Kind, offsets=None) -> AutomatedMessage:
    return AutomatedMessage.objects.create(
        site=site, kind=kind, name=str(kind), enabled=True, offsets=offsets or []
    )


def family(site, *, children=1, mobile="+12025550123", email="", preference="sms", now=NOW):
    """Children sharing one parent's phone, each with a booked appointment 3 days
    after `now`."""
    kids = []
    for n in range(children):
        child = factories.make_patient(site, first_name=f"Kid{n}", last_name="Doe")
        parent = factories.make_contact(child, first_name="Pat")
        if mobile:
            factories.add_point(parent, ContactPointKind.MOBILE, mobile, consent_sms=True)
        if email:
            factories.add_point(parent, ContactPointKind.EMAIL, email)
        factories.set_preference(parent, "reminders", preference)
        appointment = factories.make_appointment(
            child, starts_at=now + dt.timedelta(days=3, hours=n)
        )
        kids.append((child, parent, appointment))
    return kids
