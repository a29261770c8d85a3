"""32 conditional creates of one identifier at once make one patient: one 201, the
rest 200 naming it (PostgreSQL, real threads, each with its own connection)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from carebell.interop.fhir.models import FhirIdentifier
from carebell.people.models import Patient
from tests.interop.fhir.conftest import FhirClient

PARALLEL = 32


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_conditional_creates_of_one_identifier_make_one_patient(fhir):
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": "RACE-1"}],
        "name": [{"family": "Rivera", "given": ["Sam"]}],
        "telecom": [{"system": "phone", "value": "+12025550123", "use": "mobile"}],
    }
    barrier, answers = threading.Barrier(PARALLEL), []

    def create() -> None:
        client = FhirClient(fhir.headers["Authorization"].split()[1], fhir.user)
        try:
            barrier.wait(timeout=30)
            response = client.post(
                "Patient", resource, **{"If-None-Exist": "identifier=urn:test:mrn|RACE-1"}
            )
            answers.append((response.status_code, (response.json_body or {}).get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (PARALLEL - 1) + [201]
    assert len({fhir_id for _, fhir_id in answers}) == 1
    assert Patient.objects.count() == 1
    assert FhirIdentifier.objects.filter(value="RACE-1").count() == 1
