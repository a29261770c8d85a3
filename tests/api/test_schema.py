"""schemathesis against the OpenAPI document: every operation, a bounded number of
generated requests each (valid and invalid), sent with a real token to carebell's
WSGI application over seeded data — no server error, and every answer as the
document says (status, content type, headers, body)."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carebell.api import tokens
from carebell.api.main import api
from carebell.inbox import conversations
from carebell.messaging.models import AutomatedMessage, MessageTemplate, OutboxMessage
from carebell.planning.rules_defaults import default_rules
from carebell.sends import group
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from tests import factories

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Generated examples per operation: enough to reach every branch of validation,
#: few enough that the suite stays quick.
EXAMPLES = 5


@pytest.fixture
def wsgi_app():
    # The test's transaction holds the seeded rows: Django must not close the
    # connection at the end of each request (its test client does the same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(site, settings):
    settings.API_REQUESTS_PER_MINUTE = 100_000
    user = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    _token, secret = tokens.issue(user, "schemathesis")
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    point = factories.add_point(contact, "mobile", "+12025550142")
    appointment = factories.make_appointment(patient)
    rx = factories.make_prescription(patient)
    fill = factories.make_fill(rx)
    rule = AutomatedMessage.objects.bulk_create(default_rules(site))[0]
    template = MessageTemplate.objects.create(
        site=site, channel="sms", kind="appt_reminder", name="Reminder", body="#SITENAME#: see you."
    )
    now = timezone.now()
    message = OutboxMessage.objects.create(
        site=site, patient=patient, to_address="+12025550142", channel="sms", kind="appt_reminder",
        planned_at=now + dt.timedelta(hours=1), due_at=now, created_at=now, updated_at=now,
        entity_type="appointment", entity_id=appointment.pk,
    )  # fmt: skip
    conversation = conversations.record_arrival(site, "+12025550142", now)
    draft = group.create(site, [patient.pk], channels=["sms"], by=user)
    ids = {
        "site_id": site.pk, "patient_id": patient.pk, "contact_id": contact.pk,
        "point_id": point.pk, "appointment_id": appointment.pk, "rx_id": rx.pk,
        "fill_id": fill.pk, "rule_id": rule.pk, "format_id": template.pk, "message_id": message.pk,
        "conversation_id": conversation.pk, "send_id": draft.pk,
    }  # fmt: skip
    return secret, ids


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow
def test_every_operation_answers_as_documented(case, seeded, wsgi_app):
    secret, ids = seeded
    # Half the time, aim at the seeded objects, so the routes past the 404 are reached.
    if case.path_parameters and hash(repr(case.path_parameters)) % 2:
        for name in list(case.path_parameters):
            if name in ids:
                case.path_parameters[name] = ids[name]
    response = case.call(app=wsgi_app, headers={"Authorization": f"Bearer {secret}"})
    case.validate_response(response, checks=CHECKS)
