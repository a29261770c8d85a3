"""What the door reads for every call — the token, its user's permissions, the
object within the user's sites — read fresh each time and in a few statements:
the token, its user and their permissions in one, the object or page in one, the
audit entry in one."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carebell.api import idempotency, ratelimit, tokens
from carebell.api.models import IdempotentRequest
from carebell.audit.models import AuditEvent
from carebell.sites.models import StaffMembership
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories
from tests.api.conftest import ApiClient, assert_problem


@pytest.fixture
def patient(site):
    return factories.make_patient(site)


def bearer(secret: str):
    return RequestFactory().get("/api/v1/sites", HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_the_token_holds_its_users_permissions_as_django_computes_them(site):
    user = factories.make_staff(site, READ_ONLY)
    user.user_permissions.add(Permission.objects.get(codename="import_data"))
    _token, secret = tokens.issue(user, "both kinds")
    request = bearer(secret)
    token = tokens.authenticate(request)
    fresh = User.objects.get(pk=user.pk)
    assert token.user._perm_cache == ModelBackend().get_all_permissions(fresh)
    assert "sites.import_data" in token.user._perm_cache
    assert "sites.view_patients" in token.user._perm_cache


def test_a_user_without_permissions_holds_none(site):
    user = factories.make_staff(site, READ_ONLY)
    user.groups.clear()
    _token, secret = tokens.issue(user, "none")
    assert tokens.authenticate(bearer(secret)).user._perm_cache == set()


def test_a_permission_given_or_taken_counts_from_the_next_call(api_as, patient):
    desk = api_as(READ_ONLY)
    change = {"last_name": "Ruiz"}
    assert_problem(desk.patch(f"/api/v1/patients/{patient.pk}", change), 403)
    desk.user.user_permissions.add(Permission.objects.get(codename="edit_patients"))
    assert desk.patch(f"/api/v1/patients/{patient.pk}", change).status_code == 200
    desk.user.user_permissions.clear()
    Group.objects.get(name=READ_ONLY).permissions.remove(
        Permission.objects.get(codename="view_patients")
    )
    assert_problem(desk.get(f"/api/v1/patients/{patient.pk}"), 403)
    assert desk.get("/api/v1/patients").json()["items"] == []


def test_a_changed_role_counts_from_the_next_call(api_as, patient):
    desk = api_as(FRONT_DESK)
    assert desk.patch(f"/api/v1/patients/{patient.pk}", {"last_name": "Ruiz"}).status_code == 200
    desk.user.groups.set([Group.objects.get(name=READ_ONLY)])
    assert_problem(desk.patch(f"/api/v1/patients/{patient.pk}", {"last_name": "Sol"}), 403)
    assert desk.get(f"/api/v1/patients/{patient.pk}").status_code == 200


def test_a_site_taken_away_counts_from_the_next_call(api, patient):
    assert api.get(f"/api/v1/patients/{patient.pk}").status_code == 200
    StaffMembership.objects.filter(user=api.user).delete()
    assert_problem(api.get(f"/api/v1/patients/{patient.pk}"), 404)
    assert api.get("/api/v1/patients").json()["items"] == []


def test_a_superusers_token_reads_every_organizations_objects(other_org_site):
    user = User.objects.create_superuser("root", password="a-long-test-password")
    _token, secret = tokens.issue(user, "root")
    elsewhere = factories.make_patient(other_org_site)
    root = ApiClient(secret)
    assert root.get(f"/api/v1/patients/{elsewhere.pk}").json()["id"] == elsewhere.pk
    assert [p["id"] for p in root.get("/api/v1/patients").json()["items"]] == [elsewhere.pk]


def test_a_read_costs_three_statements_and_is_audited(api, patient, monkeypatch):
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 3600)
    assert api.get(f"/api/v1/patients/{patient.pk}").status_code == 200  # counts, notes use
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/patients/{patient.pk}")
    assert response.status_code == 200 and response["ETag"]
    # The token with its user and their permissions, the patient within their sites,
    # the audit.
    assert len(queries) == 3, [q["sql"] for q in queries]
    call = AuditEvent.objects.filter(action="api_call").latest("id")
    assert (call.object_type, call.object_id, call.site_id) == (
        "people.patient",
        str(patient.pk),
        patient.site_id,
    )


def test_a_page_costs_three_statements(api, site, monkeypatch):
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 3600)
    for _ in range(3):
        factories.make_patient(site)
    assert api.get("/api/v1/patients", {"limit": 2}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        page = api.get("/api/v1/patients", {"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"]
    assert len(queries) == 3, [q["sql"] for q in queries]
    rest = api.get("/api/v1/patients", {"limit": 2, "cursor": page["next"]}).json()
    assert len(rest["items"]) == 1 and rest["next"] is None


def test_pages_filtered_by_ids_show_only_the_users_sites(api, site, other_org_site):
    mine = [factories.make_patient(site) for _ in range(3)]
    theirs = factories.make_patient(other_org_site)
    listed = api.get("/api/v1/patients", {"site_id": site.pk, "limit": 2}).json()
    rest = api.get("/api/v1/patients", {"site_id": site.pk, "cursor": listed["next"]}).json()
    assert [p["id"] for p in listed["items"] + rest["items"]] == [p.pk for p in mine]
    assert rest["next"] is None
    assert api.get("/api/v1/patients", {"site_id": other_org_site.pk}).json()["items"] == []
    everything = api.get("/api/v1/patients", {"limit": 100}).json()["items"]
    assert theirs.pk not in {p["id"] for p in everything}


def test_pages_filtered_by_text_give_the_same_rows(api, site):
    found = factories.make_patient(site, external_id="MRN-7")
    factories.make_patient(site, external_id="MRN-8")
    listed = api.get("/api/v1/patients", {"external_id": "MRN-7", "site_id": site.pk}).json()
    assert [p["id"] for p in listed["items"]] == [found.pk]
    assert api.get(f"/api/v1/patients/{found.pk}/contacts").status_code == 200


@pytest.mark.postgres_only
def test_the_doors_reads_are_prepared_on_postgresql(api, patient):
    assert api.get(f"/api/v1/patients/{patient.pk}").status_code == 200
    assert api.get("/api/v1/patients").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert any('"api_apitoken"' in s and "string_agg" in s for s in prepared), prepared
    assert any('"people_patient"' in s and "LIMIT" in s for s in prepared), prepared


def _confirmations_by_email(site, patient):
    from carebell.messaging.models import AutomatedMessage
    from carebell.planning.rules_defaults import default_rules

    rules = default_rules(site)
    for rule in rules:
        rule.enabled = rule.kind == "appt_confirmation"
    AutomatedMessage.objects.bulk_create(rules)
    contact = factories.make_contact(patient)
    factories.add_point(contact, "email", "family@example.org")
    factories.set_preference(contact, "reminders", "email")


def test_a_new_appointment_is_planned_with_the_site_read_with_its_patient(api, site, patient):
    from carebell.messaging.models import OutboxMessage

    _confirmations_by_email(site, patient)
    body = {"patient_id": patient.pk, "external_id": "A-1", "starts_at": "2026-12-20T15:00:00Z"}
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/appointments", body, {"Idempotency-Key": "a-1"})
    assert response.status_code == 201, response.content
    sites = [q["sql"] for q in queries if 'FROM "sites_site"' in q["sql"]]
    assert sites == [], sites
    audited = AuditEvent.objects.filter(object_type="appointments.appointment", action="create")
    assert audited.count() == 1
    planned = OutboxMessage.objects.filter(entity_id=response.json()["id"])
    assert [m.kind for m in planned] == ["appt_confirmation"]


def test_a_create_writes_its_calls_and_its_changes_audit_entries_in_one_insert(
    api, site, patient, monkeypatch
):
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 3600)
    # Expired keys were just purged (a POST deletes them at most once a minute).
    monkeypatch.setitem(idempotency._purged_at, "all", timezone.now())
    _confirmations_by_email(site, patient)
    assert api.get(f"/api/v1/patients/{patient.pk}").status_code == 200  # counts, notes use
    body = {"patient_id": patient.pk, "external_id": "A-2", "starts_at": "2026-12-20T15:00:00Z"}
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/appointments", body, {"Idempotency-Key": "a-2"})
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in queries]
    audits = [s for s in statements if 'INTO "audit_auditevent"' in s]
    assert len(audits) == 1, statements
    # The token; the claim; the patient with their site; the appointment (its key
    # checked by its INSERT); the rules, the plan, the SMS caps' read of the
    # patient's texts and the outbox; the audit, with the stored answer as its
    # leading WITH clause on PostgreSQL (SQLite writes it first, on its own) — with
    # BEGIN, a savepoint and its release, and COMMIT.
    on_sqlite = 0 if connection.vendor == "postgresql" else 1
    assert len(statements) == 13 + on_sqlite, statements
    stored = IdempotentRequest.objects.get(key="a-2")
    assert (stored.status_code, bytes(stored.body)) == (201, response.content)
    events = list(AuditEvent.objects.order_by("id"))[-2:]
    assert (events[0].action, events[0].object_type) == ("create", "appointments.appointment")
    assert (events[1].action, events[1].detail["status"]) == ("api_call", 201)


def test_a_refused_create_keeps_only_its_calls_audit_entry_and_replays(api, site, patient):
    body = {"patient_id": patient.pk, "external_id": "A-3", "starts_at": "2026-12-20T15:00:00Z"}
    assert api.post("/api/v1/appointments", body, {"Idempotency-Key": "a-3"}).status_code == 201
    before = AuditEvent.objects.count()
    refused = api.post("/api/v1/appointments", body, {"Idempotency-Key": "a-4"})
    assert refused.status_code == 422, refused.content
    assert_problem(refused, 422)
    added = AuditEvent.objects.order_by("id")[before:]
    assert [(e.action, e.detail["status"]) for e in added] == [("api_call", 422)]
    again = api.post("/api/v1/appointments", body, {"Idempotency-Key": "a-4"})
    assert (again.status_code, again.content) == (422, refused.content)
    assert again["Idempotent-Replayed"] == "true"
