"""The HL7 senders and the message log in the admin."""

import pytest
from django.urls import reverse

from carebell.interop.hl7.models import Hl7Message, Hl7Sender
from carebell.interop.hl7.receive import receive
from tests.interop.hl7.samples import siu

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Hl7Sender, Hl7Message])
def test_the_changelist_and_change_page_load(admin_client, clinic, model):
    receive(siu(), via="file")
    name = model._meta.model_name
    assert admin_client.get(reverse(f"admin:interop_hl7_{name}_changelist")).status_code == 200
    row = model.objects.first()
    assert (
        admin_client.get(reverse(f"admin:interop_hl7_{name}_change", args=[row.pk])).status_code
        == 200
    )


def test_the_message_log_cannot_be_changed_or_deleted(admin_client, clinic):
    receive(siu(), via="file")
    row = Hl7Message.objects.get()
    url = reverse("admin:interop_hl7_hl7message_delete", args=[row.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Hl7Message.objects.filter(pk=row.pk).exists()
