"""The audit log viewer: the current site's entries, newest first, filtered by staff
member, patient, action and date, one keyset page at a time; System Administrators
only, and never another organization's entries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.audit import trail
from carebell.audit.models import AuditEvent
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from carebell.web.staff.views import audit as audit_view
from tests import factories

pytestmark = pytest.mark.django_db


def entry(site, action="view", object_type="people.patient", object_id="7", at=None, who=None):
    return trail.record(who, action, object_type=object_type, object_id=object_id,
                        site_id=site.pk, at=at, actor_label="" if who else "planner")  # fmt: skip


def test_an_administrator_reads_the_log_of_the_site_only(staff_of, site, other_org_site):
    entry(site, object_id="111")
    entry(other_org_site, object_id="999")
    page = staff_of(SYSTEM_ADMINISTRATOR).get("/staff/audit/").content.decode()
    assert "#111" in page and "#999" not in page


@pytest.mark.parametrize("role", [FRONT_DESK, PHARMACY_STAFF, READ_ONLY])
def test_other_roles_are_refused(staff_of, site, role):
    assert staff_of(role).get("/staff/audit/").status_code == 403


def test_an_outsider_never_sees_this_sites_entries(outsider, site):
    entry(site, object_id="111")
    page = outsider.get("/staff/audit/").content.decode()
    assert "#111" not in page


def test_filters_by_user_patient_action_and_date(staff_of, site):
    dana = factories.make_staff(site, FRONT_DESK, username="dana")
    entry(site, object_id="7", who=dana)
    entry(site, action="export", object_type="messaging.outboxmessage", object_id="")
    entry(site, object_id="8", at=timezone.now() - dt.timedelta(days=3))
    client = staff_of(SYSTEM_ADMINISTRATOR)

    def ids(**query):
        events = client.get("/staff/audit/", query).context["events"]
        return [(e.action, e.object_id) for e in events if e.object_type != "audit.auditevent"]

    assert ids(user="dana") == [("view", "7")]
    assert ids(patient="8") == [("view", "8")]
    assert ids(action="export") == [("export", "")]
    assert ids(date_from="2026-11-22", date_to="2026-11-22") == [("view", "8")]


@pytest.mark.parametrize(
    "query",
    [{"date_from": "yesterday"}, {"patient": "Ana"}, {"action": "steal"},
     {"date_from": "2026-11-25", "date_to": "2026-11-01"}],
)  # fmt: skip
def test_bad_filters_get_a_clear_message(staff_of, site, query):
    response = staff_of(SYSTEM_ADMINISTRATOR).get("/staff/audit/", query)
    assert response.status_code == 200 and 'class="error"' in response.content.decode()


def test_pages_follow_by_cursor(staff_of, site, monkeypatch):
    monkeypatch.setattr(audit_view, "PAGE_SIZE", 2)
    made = [entry(site, object_id=str(i)) for i in range(5)]
    client = staff_of(SYSTEM_ADMINISTRATOR)
    seen, url = [], "/staff/audit/?action=view"
    for _ in range(5):
        response = client.get(url)
        seen += [e.pk for e in response.context["events"]]
        if not response.context["next_url"]:
            break
        url = "/staff/audit/" + response.context["next_url"]
    assert seen == [e.pk for e in reversed(made)]


def test_reading_the_log_is_itself_audited(staff_of, site):
    client = staff_of(SYSTEM_ADMINISTRATOR)
    client.get("/staff/audit/")
    assert AuditEvent.objects.filter(actor=client.user, object_type="audit.auditevent").exists()


def test_the_log_takes_a_bounded_number_of_queries(staff_of, site,
                                                   django_assert_max_num_queries):  # fmt: skip
    for i in range(60):
        entry(site, object_id=str(i))
    client = staff_of(SYSTEM_ADMINISTRATOR)
    with django_assert_max_num_queries(30):
        client.get("/staff/audit/")
