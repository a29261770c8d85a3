"""The messages carebell sent, read back as Communication — and the issue's "done
when": a FHIR client creates a patient and an appointment and reads back the message
carebell sent about it."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import OutboxMessage
from carebell.simulator.server import SimConfig, start_in_thread
from tests.interop.fhir.conftest import create, make_reachable, patient_in
from tests.messaging.engine_setup import enable

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    handle = start_in_thread(SimConfig(port=0, callbacks=False, seed=1))
    settings.SMS_PROVIDER = "sim"
    settings.SIM_URL = handle.url
    yield handle
    handle.stop()


def _booked(fhir, patient_id: str, days: int = 3) -> dict:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    return create(fhir, {
        "resourceType": "Appointment",
        "status": "booked",
        "start": start.isoformat().replace("+00:00", "Z"),
        "minutesDuration": 20,
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
    })  # fmt: skip


def _send_due() -> OutboxMessage:
    message = OutboxMessage.objects.get()
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch(now=message.due_at)
    finally:
        dispatcher.close()
    return OutboxMessage.objects.get(pk=message.pk)


def test_a_fhir_client_reads_back_the_reminder_carebell_sent(fhir, site, sim):
    enable(site, "appt_reminder", [{"days": 1}])
    patient = patient_in(fhir)
    make_reachable(patient["id"])
    appointment = _booked(fhir, patient["id"])
    message = _send_due()
    assert message.status == "sent"
    [record] = sim.server.state.records
    bundle = fhir.get(f"Communication?patient={patient['id']}").json_body
    [entry] = bundle["entry"]
    communication = entry["resource"]
    assert communication["id"] == str(message.pk)
    assert communication["status"] == "completed"
    assert communication["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert communication["recipient"] == [{"reference": f"Patient/{patient['id']}"}]
    assert communication["about"] == [{"reference": f"Appointment/{appointment['id']}"}]
    assert communication["medium"][0]["text"] == "SMS"
    assert communication["payload"] == [{"contentString": record.body}]
    assert communication["sent"] == message.sent_at.astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")  # fmt: skip
    assert fhir.get(f"Communication/{message.pk}").json_body == communication


def test_a_message_to_a_parent_names_the_parent_as_recipient(fhir, site):
    enable(site, "appt_reminder", [{"days": 1}])
    child = create(fhir, {
        "resourceType": "Patient", "name": [{"family": "Doe", "given": ["Kid"]}],
        "contact": [{"relationship": [{"coding": [{"code": "MTH"}]}],
                     "name": {"family": "Doe", "given": ["Pat"]},
                     "telecom": [{"system": "phone", "value": "+12025550124", "use": "mobile"}]}],
    })  # fmt: skip
    from carebell.people.models import Contact, ContactPoint
    from tests import factories

    mother = Contact.objects.get(patient_id=child["id"])
    factories.set_preference(mother, "reminders", "sms")
    ContactPoint.objects.filter(contact=mother).update(consent_sms=True)
    _booked(fhir, child["id"])
    [entry] = fhir.get("Communication?status=preparation").json_body["entry"]
    assert entry["resource"]["recipient"] == [{"reference": f"RelatedPerson/{mother.pk}"}]
    assert fhir.get(f"RelatedPerson/{mother.pk}").json_body["relationship"][0]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]  # fmt: skip
    assert fhir.get("Communication?status=completed").json_body["entry"] == []


def test_communications_are_read_only(fhir):
    response = fhir.post("Communication", {"resourceType": "Communication", "status": "completed"})
    assert response.status_code == 405


def test_another_organizations_messages_are_not_found(fhir, other_fhir, site):
    enable(site, "appt_reminder", [{"days": 1}])
    patient = patient_in(fhir)
    make_reachable(patient["id"])
    _booked(fhir, patient["id"])
    message = OutboxMessage.objects.get()
    assert other_fhir.get(f"Communication/{message.pk}").status_code == 404
    assert other_fhir.get("Communication").json_body["entry"] == []


def test_messages_are_found_by_when_they_were_sent(fhir, site, sim):
    enable(site, "appt_reminder", [{"days": 1}])
    patient = patient_in(fhir)
    make_reachable(patient["id"])
    _booked(fhir, patient["id"])
    message = _send_due()
    day = message.sent_at.astimezone(dt.UTC).date()
    found = fhir.get(f"Communication?sent={day.isoformat()}").json_body["entry"]
    assert [e["resource"]["id"] for e in found] == [str(message.pk)]
    later = day + dt.timedelta(days=1)
    assert fhir.get(f"Communication?sent=ge{later.isoformat()}").json_body["entry"] == []
