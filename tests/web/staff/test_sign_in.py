"""Signing in to the staff app: password, the optional second factor, the throttle."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from carebell.sites.models import DeliverySettings
from carebell.sites.roles import FRONT_DESK, SYSTEM_ADMINISTRATOR
from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


def code_for(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    return f"{totp.token():06d}"


def sign_in(client: Client, username: str, password: str = PASSWORD, **extra):
    return client.post("/staff/sign-in/", {"username": username, "password": password, **extra})


def test_the_start_page_sends_a_visitor_to_the_staff_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/staff/sign-in/?next=/staff/"


def test_a_signed_in_visitor_goes_from_the_start_page_to_the_staff_home(client, site):
    client.force_login(factories.make_staff(site, FRONT_DESK))
    assert client.get("/")["Location"] == "/staff/"


def test_a_staff_page_sends_a_visitor_to_sign_in_first(client, site):
    response = client.get("/staff/settings/delivery/")
    assert response["Location"] == "/staff/sign-in/?next=/staff/settings/delivery/"


def test_the_sign_in_page_has_labelled_fields(client):
    page = client.get("/staff/sign-in/").content.decode()
    assert '<label for="id_username">' in page and '<label for="id_password">' in page


def test_it_signs_in_with_the_right_password(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    response = sign_in(client, user.username, next="/staff/automated/")
    assert response.status_code == 302 and response["Location"] == "/staff/automated/"
    assert client.get("/staff/").status_code == 200


def test_it_refuses_a_wrong_password_with_a_form_error(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    response = sign_in(client, user.username, "wrong")
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert client.get("/staff/").status_code == 302


def test_it_ignores_a_next_address_on_another_host(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    response = sign_in(client, user.username, next="https://evil.example/")
    assert response["Location"] == "/staff/"


def test_empty_input_gets_form_errors_not_a_500(client):
    response = client.post("/staff/sign-in/", {})
    assert response.status_code == 200 and "This field is required" in response.content.decode()


def test_it_locks_out_after_too_many_failures_with_carebells_message(client, site, settings):
    user = factories.make_staff(site, FRONT_DESK)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, user.username, "wrong")
    response = sign_in(client, user.username)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert 'id="login-form"' not in response.content.decode()  # the staff page, not the admin's


def confirmed_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def test_a_user_with_an_authenticator_gives_a_code_after_the_password(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    device = confirmed_device(user)
    response = sign_in(client, user.username)
    assert response["Location"].startswith("/staff/sign-in/code/")
    assert client.get("/staff/").status_code == 302  # not signed in yet
    response = client.post("/staff/sign-in/code/", {"code": code_for(device)})
    assert response.status_code == 302
    assert client.get("/staff/").status_code == 200


def test_a_wrong_code_is_refused_with_a_form_error(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    confirmed_device(user)
    sign_in(client, user.username)
    response = client.post("/staff/sign-in/code/", {"code": "000000x"})
    assert response.status_code == 200 and "not right" in response.content.decode()
    assert client.get("/staff/").status_code == 302


def test_the_code_step_without_a_password_goes_back_to_sign_in(client):
    assert client.get("/staff/sign-in/code/")["Location"] == "/staff/sign-in/"


def test_an_unverified_session_of_a_user_with_a_device_must_give_a_code(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    confirmed_device(user)
    client.force_login(user)
    assert client.get("/staff/")["Location"] == "/staff/sign-in/code/"


def require_two_factor(site) -> None:
    DeliverySettings.objects.filter(site=site).update(require_two_factor_for_admins=True)


def test_an_administrator_without_a_device_is_sent_to_set_up_when_the_site_requires_it(
    client, site
):
    require_two_factor(site)
    admin = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    response = sign_in(client, admin.username)
    assert client.get(response["Location"])["Location"] == "/staff/account/two-factor/"
    page = client.get("/staff/account/two-factor/").content.decode()
    assert "<svg" in page and "data:image" not in page


def test_front_desk_staff_are_not_held_by_the_administrators_rule(client, site):
    require_two_factor(site)
    client.force_login(factories.make_staff(site, FRONT_DESK))
    assert client.get("/staff/").status_code == 200


def test_setting_up_an_authenticator_takes_a_code_from_it(client, site):
    require_two_factor(site)
    admin = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    client.force_login(admin)
    page = client.get("/staff/account/two-factor/").content.decode()
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    assert "Secret key" in page
    response = client.post("/staff/account/two-factor/", {"code": "123456"})
    assert "not right" in response.content.decode()
    response = client.post("/staff/account/two-factor/", {"code": code_for(device)})
    assert "Wait a few seconds" in response.content.decode()  # wrong codes slow it down
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    response = client.post("/staff/account/two-factor/", {"code": code_for(device)})
    assert response["Location"] == "/staff/"
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/staff/").status_code == 200


def test_changing_the_password_needs_the_old_one(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    client.force_login(user)
    new = "another-long-passphrase-42"
    response = client.post(
        "/staff/account/password/",
        {"old_password": "wrong", "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 200 and "incorrectly" in response.content.decode()
    response = client.post(
        "/staff/account/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert client.get("/staff/").status_code == 200  # still signed in


def test_signing_out_ends_the_session(client, site):
    client.force_login(factories.make_staff(site, FRONT_DESK))
    assert client.get("/staff/sign-out/").status_code == 405
    client.post("/staff/sign-out/")
    assert client.get("/staff/").status_code == 302


def test_a_password_waits_only_five_minutes_for_its_code(client, site):
    import datetime as dt

    import time_machine

    user = factories.make_staff(site, FRONT_DESK)
    device = confirmed_device(user)
    sign_in(client, user.username)
    with time_machine.travel(dt.timedelta(minutes=6)):
        response = client.post("/staff/sign-in/code/", {"code": code_for(device)})
    assert response["Location"] == "/staff/sign-in/"


def test_the_admin_asks_for_the_code_of_a_user_who_holds_an_authenticator(client, site):
    user = factories.make_staff(site, FRONT_DESK)
    device = confirmed_device(user)
    client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    response = client.get("/admin/")
    assert response["Location"] == "/staff/sign-in/code/?next=/admin/"
    client.post("/staff/sign-in/code/", {"code": code_for(device)})
    assert client.get("/admin/").status_code == 200


def test_the_admin_sends_an_administrator_without_a_required_device_to_set_up(client, site):
    require_two_factor(site)
    admin = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    client.post("/admin/login/", {"username": admin.username, "password": PASSWORD})
    assert client.get("/admin/")["Location"] == "/staff/account/two-factor/"
