import datetime as dt
import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from carebell.api import tokens
from carebell.api.models import IdempotentRequest, RateWindow
from carebell.appointments.models import Appointment, CancellationRequest
from carebell.audit.models import AuditEvent
from carebell.inbox.models import (
    Conversation,
    ConversationRead,
    NotificationRead,
    OptOutReview,
    Presence,
    QuickResponse,
    Reply,
    StaffNotification,
)
from carebell.interop.csv.models import ImportJob, ImportProblem
from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.interop.hl7.models import Hl7Applied, Hl7Message, Hl7Sender
from carebell.messaging.models import (
    DeliveryAttempt,
    GroupRecipient,
    GroupSend,
    InboundMessage,
    MessageEvent,
    OutboundEvent,
    OutboxMessage,
    OutboxSubject,
    PlannerLease,
    ProviderEvent,
    SenderPace,
)
from carebell.outbound.models import DeliveryAttemptLog, EventDelivery, WebhookEndpoint
from carebell.people.models import ConsentWording, ContactPoint, OptOutEvent, VerificationCode
from carebell.sites.models import Site, SiteSenderNumber, StaffMembership


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def every_model(db):
    """Demo data plus at least one row of every model the seeder does not write."""
    call_command("seed_demo", patients=20, seed=3, no_progress=True, stdout=io.StringIO())
    now = timezone.now()
    site = Site.objects.get(kind="clinic", organization__slug="maple-health")
    point = ContactPoint.objects.filter(contact__patient__site=site).first()
    user = User.objects.create_user("colleague", password="a-long-test-password")
    StaffMembership.objects.create(user=user, site=site)
    CancellationRequest.objects.create(
        appointment=Appointment.objects.filter(site=site).first(),
        received_at=now,
        via="sms",
        accepted=True,
    )
    OptOutEvent.objects.create(
        site=site, address=point.value, channel="sms", opted_out=True, source="keyword",
        recorded_at=now,
    )  # fmt: skip
    ConsentWording.objects.create(site=site, version="v1", wording="Texts, yes.", created_at=now)
    VerificationCode.objects.create(
        contact_point=point, address=point.value, code_hash="x", created_at=now,
        expires_at=now + dt.timedelta(minutes=10),
    )  # fmt: skip
    message = OutboxMessage.objects.create(
        site=site, patient=point.contact.patient, contact=point.contact, contact_point=point,
        to_address=point.value, channel="sms", kind="appt_reminder", planned_at=now, due_at=now,
        created_at=now, updated_at=now, body="See you tomorrow",
    )  # fmt: skip
    attempt = DeliveryAttempt.objects.create(
        message=message, number=1, provider="sim", idempotency_key="k1", started_at=now
    )
    MessageEvent.objects.create(message=message, at=now, status="scheduled")
    OutboxSubject.objects.create(message=message, entity_type="appointment", entity_id=1)
    SenderPace.objects.create(sender=site.sms_from, next_free_at=now)
    ProviderEvent.objects.create(
        provider="sim", provider_message_id="SM1", status="sent", attempt=attempt, received_at=now
    )
    conversation = Conversation.objects.create(site=site, channel="sms", address=point.value)
    inbound = InboundMessage.objects.create(
        site=site, channel="sms", provider="sim", provider_message_id="in1",
        from_address=point.value, to_address=site.phone, body="C", received_at=now,
        conversation=conversation,
    )  # fmt: skip
    ConversationRead.objects.create(conversation=conversation, user=user, read_at=now)
    Presence.objects.create(conversation=conversation, user=user, seen_at=now)
    Reply.objects.create(conversation=conversation, message=message, sent_by=user, created_at=now)
    OptOutReview.objects.create(
        site=site, conversation=conversation, inbound=inbound, created_at=now
    )
    group = GroupSend.objects.create(
        site=site, channels=["sms"], sms_body="Closed Monday", created_at=now, updated_at=now
    )
    GroupRecipient.objects.create(group=group, patient=point.contact.patient)
    event = OutboundEvent.objects.create(
        site=site, event_type="appointment.cancelled", payload={}, created_at=now
    )
    integration_rows(site, user, event, now)
    PlannerLease.objects.create(name="daily", holder="test", expires_at=now)
    QuickResponse.objects.create(site=site, name="Thanks", body="Thank you!")
    SiteSenderNumber.objects.create(site=site, number="+12125550142")
    notification = StaffNotification.objects.create(
        site=site, kind="cancelled", text="A visit was cancelled", created_at=now
    )
    reader = User.objects.create_user("notification-reader")
    NotificationRead.objects.create(notification=notification, user=reader, read_at=now)
    AuditEvent.objects.create(
        at=now, actor_label="system", action="view", object_type="patient", site_id=site.id
    )


ENDPOINT_SECRET = "whsec_Zm9yLXRoZS1hZG1pbi10ZXN0cy1vbmx5"


def integration_rows(site, user, event, now) -> None:
    """A row of each model of the API, the webhook feed and the HL7, FHIR and CSV
    doors, with secrets and patient data the admin must not show."""
    token, _secret = tokens.issue(user, "Practice sync", now=now)
    IdempotentRequest.objects.create(
        token=token, key="k-555", fingerprint="f" * 64, created_at=now, status_code=201,
        body=b'{"last_name": "Bodyname"}',
    )  # fmt: skip
    RateWindow.objects.create(token=token, window_start=now, count=3)
    endpoint = WebhookEndpoint.objects.create(
        site=site, url="https://pms.example.org/hooks", event_types=["appointment.cancelled"],
        secret=ENDPOINT_SECRET, previous_secret=ENDPOINT_SECRET + "Old", created_at=now,
        updated_at=now,
    )  # fmt: skip
    delivery = EventDelivery.objects.create(
        endpoint=endpoint, event=event, message_id=f"msg_{site.pk}_555", due_at=now, created_at=now,
        retry_from=now, status="failed", attempts=1,
    )  # fmt: skip
    DeliveryAttemptLog.objects.create(
        delivery=delivery, number=1, started_at=now, status_code=500, outcome="server_error"
    )
    facility = f"F{site.pk}"
    Hl7Sender.objects.create(sending_application="ADMINTEST", sending_facility=facility, site=site)
    Hl7Message.objects.create(
        received_at=now, via="mllp", sender=f"ADMINTEST/{facility}", control_id="555",
        digest="d" * 64, message_type="SIU^S12", site=site, outcome="applied",
        raw=b"MSH|^~\\&|PID|||Rawname",
    )  # fmt: skip
    Hl7Applied.objects.create(
        site=site, source="hl7:F1", entity="appointment", external_id="A555", sent_at=now
    )
    record = FhirRecord.objects.create(
        resource_type="Appointment", fhir_id=f"h{site.pk}", site=site, last_updated=now,
        held={"resourceType": "Appointment", "status": "proposed"}, held_status="proposed",
    )  # fmt: skip
    FhirIdentifier.objects.create(
        record=record, site=site, resource_type="Appointment", system="urn:x", value="MRN555"
    )
    job = ImportJob.objects.create(
        site=site, kind="patients", file_name="patients.csv", created_by=user, created_at=now,
        status="rejected", problem_count=1,
    )  # fmt: skip
    ImportProblem.objects.create(
        job=job, row=2, column="mobile", value="555-Cellname", reason="not a phone number"
    )
