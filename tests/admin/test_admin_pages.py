import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from carebell.api.models import ApiToken, IdempotentRequest
from carebell.audit.models import AuditEvent
from carebell.interop.csv.models import ImportJob
from carebell.interop.fhir.models import FhirRecord
from carebell.interop.hl7.models import Hl7Applied, Hl7Message
from carebell.messaging.models import OutboxMessage
from carebell.outbound.models import DeliveryAttemptLog, EventDelivery
from carebell.people.models import ConsentRecord, OptOutEvent

CAREBELL_APPS = (
    "sites", "people", "appointments", "pharmacy", "messaging", "inbox", "audit",
    "api", "outbound", "interop_hl7", "interop_fhir", "interop_csv",
)  # fmt: skip
MODELS = [m for label in CAREBELL_APPS for m in apps.get_app_config(label).get_models()]


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_has_an_admin():
    assert [m for m in MODELS if m not in admin.site._registry] == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_the_changelist_search_and_change_page_load_for_a_superuser(
    admin_client, every_model, model
):
    assert admin_client.get(url(model, "changelist")).status_code == 200
    obj = model._default_manager.first()
    assert obj is not None, "the fixture should create a row of every model"
    assert admin_client.get(url(model, "change", obj.pk)).status_code == 200
    assert admin_client.get(url(model, "changelist"), {"q": "555"}).status_code == 200


RECORDS = [
    AuditEvent, ConsentRecord, OptOutEvent, OutboxMessage, ApiToken, IdempotentRequest,
    EventDelivery, DeliveryAttemptLog, Hl7Message, Hl7Applied, FhirRecord, ImportJob,
]  # fmt: skip


@pytest.mark.parametrize("model", RECORDS, ids=lambda m: m._meta.label)
def test_history_cannot_be_added_changed_or_deleted(
    admin_client, every_model, rf, admin_user, model
):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = admin_user
    obj = model._default_manager.first()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, obj)
    assert not model_admin.has_delete_permission(request, obj)
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model._default_manager.filter(pk=obj.pk).exists()
