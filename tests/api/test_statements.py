"""The door's prepared reads give what the ORM gives: the same rows, the same
values and types (PostgreSQL reads some of them in binary), the same instances."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from carebell.api.resources import _lister, _reader
from carebell.api.routes.appointments import APPOINTMENTS
from carebell.api.routes.people import PATIENTS
from carebell.api.statements import Prepared
from carebell.appointments.models import Appointment
from carebell.people.models import Patient
from carebell.sites.roles import FRONT_DESK
from tests import factories


@pytest.fixture
def staff(site):
    return factories.make_staff(site, FRONT_DESK)


def test_a_page_is_the_orms_page(site, other_org_site, staff):
    for _ in range(4):
        factories.make_patient(site)
    factories.make_patient(other_org_site)
    fields = list(PATIENTS.out.model_fields)
    page = _lister(PATIENTS, False, ("site_id",), 3).dicts(0, staff.pk, site.pk)
    mine = Patient.objects.filter(site=site).order_by("pk").values(*fields)
    assert page == list(mine[:4])
    for name, value in page[0].items():
        assert type(value) is type(mine[0][name]), name
    assert page[0]["created_at"].tzinfo == mine[0]["created_at"].tzinfo
    after = _lister(PATIENTS, False, ("site_id",), 3).dicts(page[1]["id"], staff.pk, site.pk)
    assert [p["id"] for p in after] == [p["id"] for p in mine[2:]]


def test_a_page_of_a_superuser_sees_every_site(site, other_org_site):
    root = User.objects.create_superuser("root", password="a-long-test-password")
    ids = [factories.make_patient(s).pk for s in (site, other_org_site)]
    assert [p["id"] for p in _lister(PATIENTS, True, (), 10).dicts(0, root.pk)] == ids


def test_one_record_is_the_orms_instance(site, other_org_site, staff):
    appointment = factories.make_appointment(factories.make_patient(site))
    (found,) = _reader(APPOINTMENTS, False).objects(appointment.pk, staff.pk)
    stored = Appointment.objects.get(pk=appointment.pk)
    for field in Appointment._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(stored, field.attname), field.name
    outsider = factories.make_staff(other_org_site, FRONT_DESK)
    assert _reader(APPOINTMENTS, False).objects(appointment.pk, outsider.pk) == []


def test_a_stand_in_that_never_reaches_the_query_is_refused(site):
    unused = Prepared(lambda pk, other: Patient.objects.filter(pk=pk), -1, -2)
    with pytest.raises(ValueError, match="stand-in"):
        unused.rows(1, 2)
