"""Automated messages, message formats, the SMS counter, the queue, explain and the
dry run through the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.messaging.models import AutomatedMessage, MessageTemplate, OutboxMessage
from carebell.planning.rules_defaults import default_rules
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories
from tests.api.conftest import assert_problem


@pytest.fixture
def rules(site):
    return AutomatedMessage.objects.bulk_create(default_rules(site))


def reminder(rules) -> AutomatedMessage:
    return next(r for r in rules if r.kind == "appt_reminder")


def message(site, status="scheduled", **fields):
    now = timezone.now()
    values = {
        "site": site, "to_address": "+12025550190", "channel": "sms", "kind": "appt_reminder",
        "planned_at": now + dt.timedelta(hours=1), "due_at": now, "status": status,
        "created_at": now, "updated_at": now, "entity_type": "appointment",
        "entity_name": "Avery Example", **fields,
    }  # fmt: skip
    return OutboxMessage.objects.create(**values)


def test_it_lists_and_changes_a_rule_through_save_rule(api, rules):
    listed = api.get("/api/v1/automated-messages", {"limit": 100}).json()["items"]
    assert {r["id"] for r in listed} == {r.pk for r in rules}
    rule = reminder(rules)
    changed = api.patch(
        f"/api/v1/automated-messages/{rule.pk}",
        {"enabled": True, "offsets": [{"days": 2}, {"hours": 3}], "channels": ["sms"]},
    )
    assert changed.status_code == 200, changed.content
    rule.refresh_from_db()
    assert rule.enabled and rule.offsets == [{"days": 2}, {"hours": 3}] and rule.channels == ["sms"]
    assert_problem(api.patch(f"/api/v1/automated-messages/{rule.pk}", {"channels": ["fax"]}), 422)


def test_a_rule_added_without_filters_is_stored_and_answered_cleanly(api, site):
    import warnings

    body = {"site_id": site.pk, "kind": "appt_reminder", "name": "Day before"}
    with warnings.catch_warnings():
        # pydantic warns when a nested schema's default is a bare dict on dumping.
        warnings.simplefilter("error")
        created = api.post("/api/v1/automated-messages", body)
    assert created.status_code == 201, created.content
    rule = AutomatedMessage.objects.get(pk=created.json()["id"])
    assert (rule.filters, rule.settings_override, rule.enabled) == ({}, {}, False)
    assert created["Location"] == f"/api/v1/automated-messages/{rule.pk}" and created["ETag"]


def test_a_front_desk_token_reads_rules_but_cannot_change_them(api_as, rules):
    front = api_as(FRONT_DESK)
    rule = reminder(rules)
    assert front.get(f"/api/v1/automated-messages/{rule.pk}").status_code == 200
    assert_problem(front.patch(f"/api/v1/automated-messages/{rule.pk}", {"enabled": True}), 403)


def test_the_forecast_of_a_changed_rule_saves_nothing(api, rules, site):
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    factories.add_point(contact, "email", "ana@example.org")
    factories.set_preference(contact, "reminders", "email")
    factories.make_appointment(patient, starts_at=timezone.now() + dt.timedelta(days=3))
    rule = reminder(rules)
    forecast = api.post(
        f"/api/v1/automated-messages/{rule.pk}/forecast", {"offsets": [{"days": 1}]}
    )
    assert forecast.status_code == 200, forecast.content
    body = forecast.json()
    assert body["days"] == 7 and [p["kind"] for p in body["planned"]] == ["appt_reminder"]
    rule.refresh_from_db()
    assert not rule.enabled and not OutboxMessage.objects.exists()


def test_a_rule_of_another_organization_is_not_found(outsider_api, rules):
    assert_problem(outsider_api.get(f"/api/v1/automated-messages/{rules[0].pk}"), 404)
    assert outsider_api.get("/api/v1/automated-messages").json()["items"] == []


TEXT = "#SITENAME#: #PATIENTFIRSTNAME# on #APPTDATE# #APPTTIME#. Reply C to confirm, STOP to end."


def test_message_formats_are_saved_through_the_service(api, site):
    created = api.post(
        "/api/v1/message-formats",
        {
            "site_id": site.pk,
            "channel": "sms",
            "kind": "appt_reminder",
            "name": "Short",
            "body": TEXT,
        },
    )
    assert created.status_code == 201, created.content
    template = MessageTemplate.objects.get(pk=created.json()["format"]["id"])
    assert template.in_use and created.json()["warnings"] == []
    broken = api.patch(f"/api/v1/message-formats/{template.pk}", {"body": "Hi #NOSUCHFIELD#"})
    assert_problem(broken, 422)
    assert api.get(f"/api/v1/message-formats/{template.pk}").json()["body"] == TEXT


def test_a_read_only_token_cannot_manage_formats(api_as, site):
    reader = api_as(READ_ONLY)
    body = {
        "site_id": site.pk,
        "channel": "sms",
        "kind": "appt_reminder",
        "name": "x",
        "body": "Hi",
    }
    assert_problem(reader.post("/api/v1/message-formats", body), 403)


def test_the_preview_renders_samples_and_counts_segments(api, site):
    response = api.post(
        "/api/v1/message-formats/preview",
        {
            "site_id": site.pk,
            "channel": "sms",
            "kind": "appt_reminder",
            "body": "Hi #PATIENTFIRSTNAME# 😀",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (
        body["body"].startswith("Hi Alexandra")
        and body["encoding"] == "UCS-2"
        and body["segments"] == 1
    )


def test_the_sms_counter(api, site):
    body = api.post("/api/v1/sms/count", {"text": "a" * 161}).json()
    assert (body["encoding"], body["segments"], len(body["split"])) == ("GSM-7", 2, 2)
    smart = api.post("/api/v1/sms/count", {"text": "“quoted”", "smart_encoding": True}).json()
    assert smart["encoding"] == "GSM-7" and smart["text"] == '"quoted"'


def test_the_queue_filters_pages_and_cancels(api, site, other_org_site):
    pending = [message(site) for _ in range(3)]
    sent = message(site, status="sent")
    message(other_org_site)
    first = api.get(f"/api/v1/sites/{site.pk}/queue", {"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next"]
    rest = api.get(f"/api/v1/sites/{site.pk}/queue", {"limit": 2, "cursor": first["next"]}).json()
    assert {m["id"] for m in first["items"] + rest["items"]} == {m.pk for m in [*pending, sent]}
    only_sent = api.get(f"/api/v1/sites/{site.pk}/queue", {"status": "sent"}).json()["items"]
    assert [m["id"] for m in only_sent] == [sent.pk]
    assert_problem(api.get(f"/api/v1/sites/{site.pk}/queue", {"status": "bogus"}), 422)
    done = api.post(
        f"/api/v1/sites/{site.pk}/queue/cancel", {"message_ids": [pending[0].pk, sent.pk]}
    )
    assert done.json() == {"cancelled": 1}
    assert OutboxMessage.objects.get(pk=pending[0].pk).status == "cancelled"
    assert OutboxMessage.objects.get(pk=sent.pk).status == "sent"
    detail = api.get(f"/api/v1/messages/{pending[0].pk}").json()
    assert detail["status"] == "cancelled" and detail["why"]
    why = api.get(f"/api/v1/messages/{pending[0].pk}/explain").json()
    assert why["messages"][0]["id"] == pending[0].pk and why["messages"][0]["to"] != "+12025550190"


def test_cancelling_needs_delete_queued(api_as, site):
    reader = api_as(READ_ONLY)
    pending = message(site)
    assert reader.get(f"/api/v1/sites/{site.pk}/queue").status_code == 200
    assert_problem(
        reader.post(f"/api/v1/sites/{site.pk}/queue/cancel", {"message_ids": [pending.pk]}), 403
    )
    assert OutboxMessage.objects.get(pk=pending.pk).status == "scheduled"


def test_another_organizations_queue_and_messages_are_not_found(outsider_api, site):
    pending = message(site)
    assert_problem(outsider_api.get(f"/api/v1/sites/{site.pk}/queue"), 404)
    assert_problem(outsider_api.get(f"/api/v1/messages/{pending.pk}"), 404)
    assert_problem(
        outsider_api.post(f"/api/v1/sites/{site.pk}/queue/cancel", {"message_ids": [pending.pk]}),
        404,
    )


def test_the_dry_run_and_a_patients_explanation(api, site, rules):
    AutomatedMessage.objects.filter(kind="appt_reminder", site=site).update(enabled=True)
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    factories.add_point(contact, "email", "ana@example.org")
    factories.set_preference(contact, "reminders", "email")
    factories.make_appointment(patient, starts_at=timezone.now() + dt.timedelta(days=3))
    dry = api.get(f"/api/v1/sites/{site.pk}/dry-run", {"days": 7}).json()
    assert dry["planned"] >= 1 and dry["lines"][0]["kind"] == "appt_reminder"
    why = api.get(f"/api/v1/patients/{patient.pk}/explain").json()
    assert why["lines"][0] == f"patient {patient.pk} at {site.name}"
    assert any(d["status"] == "planned" for d in why["planning"])
    assert_problem(api.get(f"/api/v1/sites/{site.pk}/dry-run", {"days": 90}), 422)
