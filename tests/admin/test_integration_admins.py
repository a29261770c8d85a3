"""The admins of the API, the webhook feed and the HL7, FHIR and CSV doors: secrets
and raw patient data never shown, each organization's rows kept to it, records
read-only, and the actions going through the entry points."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from carebell.api.models import ApiToken, IdempotentRequest
from carebell.audit.models import AuditEvent
from carebell.interop.csv.models import ImportJob, ImportProblem
from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.interop.hl7.models import Hl7Message
from carebell.messaging.models import OutboundEvent
from carebell.outbound.models import EventDelivery, WebhookEndpoint
from carebell.sites.roles import FRONT_DESK, SYSTEM_ADMINISTRATOR
from tests import factories
from tests.admin.conftest import ENDPOINT_SECRET, integration_rows

pytestmark = pytest.mark.django_db


def rows_of(site, username: str) -> User:
    user = User.objects.create_user(username)
    event = OutboundEvent.objects.create(
        site=site, event_type="appointment.cancelled", payload={}, created_at=timezone.now()
    )
    integration_rows(site, user, event, timezone.now())
    return user


def url(model, view: str, *args) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


def page(client, model, view: str = "changelist", obj=None) -> str:
    response = client.get(url(model, view, *([obj.pk] if obj else [])))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def ours(site):
    return rows_of(site, "ours")


@pytest.fixture
def theirs(other_org_site):
    return rows_of(other_org_site, "theirs")


def test_a_token_shows_its_prefix_and_never_its_hash(admin_client, ours):
    token = ApiToken.objects.get()
    for text in (page(admin_client, ApiToken), page(admin_client, ApiToken, "change", token)):
        assert token.prefix in text
        assert token.secret_hash not in text


def test_an_endpoints_secrets_are_never_shown(admin_client, ours):
    endpoint = WebhookEndpoint.objects.get()
    text = page(admin_client, WebhookEndpoint, "change", endpoint)
    assert "pms.example.org" in text
    assert ENDPOINT_SECRET not in text


@pytest.mark.parametrize(
    ("model", "hidden"),
    [
        (IdempotentRequest, "Bodyname"),  # the stored answer's body
        (Hl7Message, "Rawname"),  # the message's raw bytes
    ],
)
def test_raw_patient_data_is_not_on_a_records_page(admin_client, ours, model, hidden):
    obj = model.objects.get()
    assert hidden not in page(admin_client, model) + page(admin_client, model, "change", obj)


@pytest.mark.parametrize(
    ("model", "hidden"), [(ImportProblem, "Cellname"), (FhirIdentifier, "MRN555")]
)
def test_patient_data_is_on_the_detail_page_only_and_looking_is_audited(
    admin_client, ours, model, hidden
):
    obj = model.objects.get()
    assert hidden not in page(admin_client, model)
    assert hidden in page(admin_client, model, "change", obj)
    assert AuditEvent.objects.filter(action="view", object_id=str(obj.pk)).exists()


def test_a_site_administrator_sees_the_integrations_of_their_own_site_only(
    client, site, ours, theirs
):
    client.force_login(factories.make_staff(site, SYSTEM_ADMINISTRATOR))
    mine = WebhookEndpoint.objects.get(site=site)
    other = WebhookEndpoint.objects.exclude(site=site).get()
    text = page(client, WebhookEndpoint)
    assert url(WebhookEndpoint, "change", mine.pk) in text
    assert url(WebhookEndpoint, "change", other.pk) not in text
    jobs = page(client, ImportJob)
    assert url(ImportJob, "change", ImportJob.objects.get(site=site).pk) in jobs
    assert url(ImportJob, "change", ImportJob.objects.exclude(site=site).get().pk) not in jobs
    theirs_delivery = EventDelivery.objects.exclude(endpoint__site=site).get()
    assert client.get(url(EventDelivery, "change", theirs_delivery.pk)).status_code == 302
    assert url(FhirRecord, "change", FhirRecord.objects.exclude(site=site).get().pk) not in page(
        client, FhirRecord
    )


def test_tokens_are_for_superusers_only(client, site, ours):
    client.force_login(factories.make_staff(site, SYSTEM_ADMINISTRATOR))
    assert client.get(url(ApiToken, "changelist")).status_code == 403
    assert client.get(url(IdempotentRequest, "changelist")).status_code == 403


def test_front_desk_sees_no_integrations_or_imports(client, site, ours):
    client.force_login(factories.make_staff(site, FRONT_DESK))
    for model in (WebhookEndpoint, EventDelivery, Hl7Message, FhirRecord, ImportJob):
        assert client.get(url(model, "changelist")).status_code == 403, model


def act(client, model, action: str, obj) -> None:
    client.post(url(model, "changelist"), {"action": action, "_selected_action": [obj.pk]})


def test_revoking_a_token_in_the_admin_revokes_it_and_is_audited(admin_client, admin_user, ours):
    token = ApiToken.objects.get()
    act(admin_client, ApiToken, "revoke", token)
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == admin_user
    assert AuditEvent.objects.filter(action="revoke", object_id=str(token.pk)).exists()


def test_a_failed_delivery_is_sent_again_and_an_endpoint_switched_off(client, site, ours):
    client.force_login(factories.make_staff(site, SYSTEM_ADMINISTRATOR))
    delivery = EventDelivery.objects.get()
    act(client, EventDelivery, "send_again", delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    endpoint = WebhookEndpoint.objects.get()
    act(client, WebhookEndpoint, "switch_off", endpoint)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "staff")
    assert AuditEvent.objects.filter(action="change", object_id=str(endpoint.pk)).exists()


def test_staff_of_another_organization_cannot_send_our_deliveries_again(
    client, other_org_site, ours, theirs
):
    client.force_login(factories.make_staff(other_org_site, SYSTEM_ADMINISTRATOR))
    delivery = EventDelivery.objects.exclude(endpoint__site=other_org_site).get()
    act(client, EventDelivery, "send_again", delivery)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
