"""What every API call shares: 401 without a usable token, one problem shape for
every error, Idempotency-Key on POST, the rate limit, and the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.api import tokens
from carebell.api.models import IdempotentRequest
from carebell.audit.models import AuditEvent
from carebell.people.models import Patient
from tests.api.conftest import ApiClient, assert_problem

PATIENT = {"external_id": "EXT-9", "first_name": "Lia", "last_name": "Park"}


@pytest.mark.parametrize("header", [None, "Bearer cb_not-a-token", "Basic dXNlcjpwYXNz"])
def test_a_call_without_a_valid_token_is_401(site, header):
    client = ApiClient()
    headers = {"Authorization": header} if header else {}
    body = assert_problem(client.get("/api/v1/sites", headers=headers), 401)
    assert "Bearer" in body["detail"]


def test_revoked_and_expired_tokens_are_401(api, site):
    assert api.get("/api/v1/sites").status_code == 200
    tokens.revoke(api.token, by=api.user)
    assert_problem(api.get("/api/v1/sites"), 401)
    now = timezone.now()
    _token, secret = tokens.issue(
        api.user, "short", expires_at=now + dt.timedelta(minutes=5), now=now
    )
    short = ApiClient(secret)
    assert short.get("/api/v1/sites").status_code == 200
    import time_machine

    with time_machine.travel(now + dt.timedelta(minutes=6)):
        assert_problem(short.get("/api/v1/sites"), 401)


def test_the_document_needs_a_token_or_a_staff_session(api, site, client):
    assert_problem(client.get("/api/v1/openapi.json"), 401)
    assert api.get("/api/v1/openapi.json").status_code == 200
    client.force_login(api.user)
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_unknown_routes_and_methods_are_problems_too(api, site):
    assert_problem(api.get("/api/v1/nothing/here"), 404)
    response = api.delete("/api/v1/sites")
    assert_problem(response, 405)
    assert "GET" in response["Allow"]


def test_malformed_json_is_a_problem(api, site):
    assert_problem(api.post("/api/v1/patients", "{not json"), 400)


def test_an_unexpected_error_is_a_500_problem_without_details(api, site, monkeypatch):
    from carebell.api.routes import sites

    def broken(user):
        raise RuntimeError("Ana Lopez, born 1990")

    monkeypatch.setattr(sites.access, "sites_for", broken)
    body = assert_problem(api.get("/api/v1/sites"), 500)
    assert "Ana" not in body["detail"]


def test_the_same_idempotency_key_replays_the_first_answer(api, site):
    key = {"Idempotency-Key": "create-lia-1"}
    first = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key)
    again = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"] and again["ETag"] == first["ETag"]
    assert Patient.objects.count() == 1


def test_the_same_key_with_another_body_is_422(api, site):
    key = {"Idempotency-Key": "create-lia-2"}
    assert api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key).status_code == 201
    other = {**PATIENT, "external_id": "EXT-10", "site_id": site.pk}
    body = assert_problem(api.post("/api/v1/patients", other, key), 422)
    assert "Idempotency-Key" in body["detail"]
    assert Patient.objects.count() == 1


def test_keys_belong_to_their_token(api, api_as, site):
    key = {"Idempotency-Key": "shared-name"}
    assert api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key).status_code == 201
    other = api_as()
    second = other.post(
        "/api/v1/patients", {**PATIENT, "external_id": "EXT-11", "site_id": site.pk}, key
    )
    assert second.status_code == 201 and not second.has_header("Idempotent-Replayed")


def _in_progress(token, key: str, body: dict) -> None:
    """The row the first request with `key` holds while it is being answered."""
    from django.test import RequestFactory

    from carebell.api import idempotency

    request = RequestFactory().post("/api/v1/patients", body, content_type="application/json")
    prints = idempotency.fingerprint(request)
    IdempotentRequest.objects.create(
        token=token, key=key, fingerprint=prints, created_at=timezone.now()
    )


def test_a_key_still_being_answered_is_409(api, site):
    body = {**PATIENT, "site_id": site.pk}
    _in_progress(api.token, "busy", body)
    response = api.post("/api/v1/patients", body, {"Idempotency-Key": "busy"})
    assert_problem(response, 409)
    assert response["Retry-After"] == "1"
    assert not Patient.objects.exists()


def test_another_body_for_a_key_in_progress_is_422(api, site):
    _in_progress(api.token, "busy", {**PATIENT, "site_id": site.pk})
    other = {**PATIENT, "external_id": "EXT-12", "site_id": site.pk}
    assert_problem(api.post("/api/v1/patients", other, {"Idempotency-Key": "busy"}), 422)
    assert not Patient.objects.exists()


def test_a_key_expires_after_a_day(api, site):
    key = {"Idempotency-Key": "daily"}
    assert api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key).status_code == 201
    IdempotentRequest.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    again = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key)
    assert_problem(again, 422)  # answered anew: the patient exists now
    assert not again.has_header("Idempotent-Replayed")


def test_a_bad_key_is_400(api, site):
    assert_problem(api.post("/api/v1/patients", {}, {"Idempotency-Key": "é" * 3}), 400)


def test_the_rate_limit_answers_429_with_retry_after(api, site, settings):
    settings.API_REQUESTS_PER_MINUTE = 3
    for _ in range(3):
        assert api.get("/api/v1/sites").status_code == 200
    response = api.get("/api/v1/sites")
    assert_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_rate_limit_counts_per_token(api, api_as, site, settings):
    settings.API_REQUESTS_PER_MINUTE = 1
    assert api.get("/api/v1/sites").status_code == 200
    assert api.get("/api/v1/sites").status_code == 429
    assert api_as().get("/api/v1/sites").status_code == 200


def test_every_call_is_audited_with_its_token(api, site, client):
    api.get(f"/api/v1/sites/{site.pk}")
    api.get("/api/v1/sites/999999")
    ApiClient().get("/api/v1/sites")
    calls = list(AuditEvent.objects.filter(action="api_call").order_by("id"))
    assert [c.detail["status"] for c in calls] == [200, 404, 401]
    assert calls[0].actor == api.user and calls[0].detail["token"] == api.token.pk
    assert calls[0].object_type == "sites.site" and calls[0].object_id == str(site.pk)
    assert calls[0].site_id == site.pk
    assert calls[2].actor is None and calls[2].actor_label == "api:anonymous"


def test_the_limit_is_one_count_for_every_worker(api, site, settings):
    from carebell.api import ratelimit

    settings.API_REQUESTS_PER_MINUTE = 4
    for _ in range(4):
        ratelimit._counts.clear()  # another worker process: nothing counted locally
        assert api.get("/api/v1/sites").status_code == 200
    ratelimit._counts.clear()
    assert_problem(api.get("/api/v1/sites"), 429)


def test_far_from_the_limit_requests_are_counted_in_batches(api, site, settings, monkeypatch):
    from carebell.api import ratelimit
    from carebell.api.models import RateWindow

    settings.API_REQUESTS_PER_MINUTE = 1000
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 3600)
    for _ in range(25):
        assert api.get("/api/v1/sites").status_code == 200
    # The first request, then twenty at once, reached the row; four wait in the process.
    assert RateWindow.objects.get(token=api.token).count == 21


@pytest.mark.django_db(transaction=True)  # real commits, to count them
def test_a_post_with_a_key_commits_once_with_its_audit_entry(api, site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key = {"Idempotency-Key": "one-commit"}
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key)
    assert response.status_code == 201
    commits = [q["sql"] for q in queries if q["sql"] == "COMMIT"]
    if connection.vendor == "postgresql":  # SQLite's driver commits without logging
        assert len(commits) == 1, [q["sql"] for q in queries]
    stored = IdempotentRequest.objects.get(key="one-commit")
    assert (stored.status_code, bytes(stored.body)) == (201, response.content)
    assert AuditEvent.objects.filter(action="api_call", detail__status=201).count() == 1


def test_a_refused_post_with_a_key_writes_nothing_but_its_answer_and_audit(api, site):
    key = {"Idempotency-Key": "refused"}
    assert api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}).status_code == 201
    again = {**PATIENT, "site_id": site.pk}  # the same external id: refused by the entry point
    first = api.post("/api/v1/patients", again, key)
    assert first.status_code == 422, first.content
    replayed = api.post("/api/v1/patients", again, key)
    assert (replayed.status_code, replayed.content) == (422, first.content)
    assert replayed["Idempotent-Replayed"] == "true"
    assert Patient.objects.count() == 1
    assert AuditEvent.objects.filter(action="api_call", detail__status=422).count() == 2


def test_a_post_that_fails_gives_its_key_back_and_writes_nothing(api, site, monkeypatch):
    from carebell.people import actions

    store, written = actions._store, []  # the entry point's write of the row

    def store_then_fail(obj):
        store(obj)
        written.append(Patient.objects.filter(pk=obj.pk).exists())
        raise RuntimeError("failed after writing")

    monkeypatch.setattr(actions, "_store", store_then_fail)
    key = {"Idempotency-Key": "fails"}
    try:
        answered = api.post("/api/v1/patients", {**PATIENT, "site_id": site.pk}, key)
        assert answered.status_code == 500  # with DEBUG, ninja answers; else Django does
    except RuntimeError:
        pass
    assert written == [True]  # the row was written, then the request failed
    assert not IdempotentRequest.objects.filter(key="fails").exists()
    assert not Patient.objects.exists()
