"""With debug off the simulated phone and mailbox do not exist: their webhooks answer
404 and write nothing, whatever secret a request is signed with, and the deploy check
fails while a site still sends through them."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from twilio.request_validator import RequestValidator

from carebell.audit.models import AuditEvent
from carebell.messaging.models import InboundMessage, ProviderEvent
from carebell.providers.checks import check_no_simulator_in_production
from carebell.simulator.providers import sim_token
from tests import factories

pytestmark = pytest.mark.django_db

OLD_PUBLIC_TOKEN = "carebell-sim"  # the fixed secret carebell once shipped
REPLY = {"MessageSid": "SM" + "1" * 32, "From": "+12025550142", "To": "+12025550199", "Body": "C"}
STATUS = {"MessageSid": "SM" + "2" * 32, "MessageStatus": "delivered"}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SIM_ENABLED = False
    settings.SMS_PROVIDER = settings.VOICE_PROVIDER = settings.EMAIL_PROVIDER = "console"
    settings.BASE_URL = "http://testserver"
    return settings


def signed_post(client, path: str, form: dict, token: str = OLD_PUBLIC_TOKEN):
    signature = RequestValidator(token).compute_signature(f"http://testserver{path}", form)
    return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)


def nothing_written() -> bool:
    return not (
        InboundMessage.objects.exists()
        or ProviderEvent.objects.exists()
        or AuditEvent.objects.exists()
    )


def test_a_reply_signed_with_the_old_public_token_gets_404_and_writes_nothing(
    client, site, production
):
    response = signed_post(client, "/hooks/sim/inbound", REPLY)
    assert response.status_code == 404
    assert nothing_written()


@pytest.mark.parametrize("provider", ["sim", "sim_email", "sim_voice"])
def test_every_simulated_status_hook_answers_404(client, site, production, provider):
    response = signed_post(client, f"/hooks/{provider}/status/1", STATUS)
    assert response.status_code == 404
    assert nothing_written()


def test_even_the_configured_simulator_secret_opens_nothing(client, site, production):
    production.SIM_AUTH_TOKEN = "a-simulator-secret-of-some-length"
    response = signed_post(client, "/hooks/sim/inbound", REPLY, production.SIM_AUTH_TOKEN)
    assert response.status_code == 404
    assert nothing_written()


def test_in_development_the_old_public_token_is_no_longer_believed(client, site, settings):
    settings.SIM_ENABLED = True
    settings.BASE_URL = "http://testserver"
    assert sim_token() not in ("", OLD_PUBLIC_TOKEN)
    response = signed_post(client, "/hooks/sim/inbound", REPLY)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_the_deploy_check_names_the_sites_that_send_through_the_simulator(
    site, other_org_site, production
):
    site.providers = {"sms": "sim"}
    site.save()
    (error,) = check_no_simulator_in_production()
    assert error.id == "carebell.E003" and error.is_serious()
    assert f"site ids {site.id})" in error.msg


def test_the_deploy_check_passes_when_nothing_reaches_the_simulator(site, production):
    messages = run_checks(include_deployment_checks=True)
    assert [m for m in messages if m.id.startswith("carebell")] == []


def test_the_deploy_check_fails_for_each_way_to_the_simulator(site, production):
    production.SIM_ENABLED = True
    production.SMS_PROVIDER = "sim"
    factories.make_site(site.organization, name="Annex", providers={"email": "sim"})
    messages = run_checks(include_deployment_checks=True, tags=["carebell"])
    assert sorted(m.id for m in messages) == ["carebell.E001", "carebell.E002", "carebell.E003"]


def test_the_deploy_check_leaves_development_alone(site, settings):
    settings.DEBUG = True
    settings.SMS_PROVIDER = "sim"
    assert check_no_simulator_in_production() == []
