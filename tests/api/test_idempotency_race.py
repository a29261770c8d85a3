"""Sixteen POSTs with one Idempotency-Key at once create one patient: one 201, the
others 409 (still being answered) or the same 201 replayed (PostgreSQL, real
threads, each with its own connection)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from carebell.api.models import IdempotentRequest
from carebell.people.models import Patient
from tests.api.conftest import ApiClient

PARALLEL = 16


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_posts_with_one_key_create_one_patient(api, site):
    body = {"site_id": site.pk, "external_id": "RACE-1", "first_name": "Sam", "last_name": "Rivera"}
    barrier, answers = threading.Barrier(PARALLEL), []

    def post() -> None:
        client = ApiClient(api.secret)
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/patients", body, {"Idempotency-Key": "race-1"})
            answers.append((response.status_code, response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == PARALLEL
    first = [a for a in answers if a == (201, None)]
    others = [a for a in answers if a != (201, None)]
    assert len(first) == 1
    assert all(a in ((409, None), (201, "true")) for a in others), answers
    assert Patient.objects.filter(external_id="RACE-1").count() == 1
    assert IdempotentRequest.objects.get(key="race-1").status_code == 201
