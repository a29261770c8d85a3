"""The inbox's idle polls: three statements when nothing changed (the session, the
guard's one statement, the "anything new?" check), and every refusal exactly as
the full guard gives it, for a change made after the page was opened (the tokens in
hand are valid, so a wrong grant would show as a 204)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from carebell.inbox.models import Conversation
from carebell.sites.models import DeliverySettings, StaffMembership
from carebell.sites.roles import FRONT_DESK, READ_ONLY, SYSTEM_ADMINISTRATOR
from carebell.web.staff import guard
from tests import factories
from tests.inbox.conftest import make_family, text

pytestmark = pytest.mark.django_db

#: The session, the guard's statement, the token check.
IDLE_STATEMENTS = 3


@pytest.fixture
def conversation(client, site, settings):
    settings.BASE_URL = "http://testserver"
    make_family(site)
    text(client, "Can we move Tuesday?")
    return Conversation.objects.get(site=site)


class Polls:
    """A signed-in client with both pages open: each poll with the token its page gave."""

    def __init__(self, client: Client, conversation: Conversation) -> None:
        self.client = client
        page = client.get(f"/staff/inbox/{conversation.pk}/")
        assert page.status_code == 200
        context = page.context
        params = {"token": context["token"], "watch": context["watched"]}
        self.thread = (f"/staff/inbox/{conversation.pk}/poll/", params)
        listing = client.get("/staff/inbox/")
        self.listing = ("/staff/inbox/poll/", {"token": listing.context["token"]})

    def both(self):
        return [self.client.get(url, params) for url, params in (self.thread, self.listing)]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def verified(client: Client, device: TOTPDevice) -> None:
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def statuses(responses) -> list:
    return [(r.status_code, r.get("Location", "")) for r in responses]


def test_an_idle_poll_costs_three_statements(site, conversation, django_assert_num_queries):
    polls = Polls(signed_in(factories.make_staff(site, FRONT_DESK)), conversation)
    for url, params in (polls.thread, polls.listing):
        with django_assert_num_queries(IDLE_STATEMENTS):
            assert polls.client.get(url, params).status_code == 204


def test_a_verified_second_factor_and_a_chosen_site_stay_on_the_quick_path(
    site, pharmacy, conversation, django_assert_num_queries
):
    user = factories.make_staff(site, FRONT_DESK)
    StaffMembership.objects.create(user=user, site=pharmacy)
    client = signed_in(user)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    verified(client, device)
    assert client.post("/staff/site/", {"site": site.pk}).status_code == 302
    polls = Polls(client, conversation)
    for url, params in (polls.thread, polls.listing):
        with django_assert_num_queries(IDLE_STATEMENTS):
            assert client.get(url, params).status_code == 204


def test_a_permission_granted_to_the_person_is_honoured(site, conversation):
    user = factories.make_staff(site, READ_ONLY)
    user.user_permissions.add(Permission.objects.get(codename="work_inbox"))
    polls = Polls(signed_in(user), conversation)
    assert [r.status_code for r in polls.both()] == [204, 204]


def test_a_poll_with_news_or_a_heartbeat_takes_the_full_way(client, site, conversation):
    polls = Polls(signed_in(factories.make_staff(site, FRONT_DESK)), conversation)
    url, params = polls.thread
    beat = polls.client.get(url, {**params, "beat": "1"})
    assert beat.status_code == 200 and beat.json()["present"] == []
    text(client, "Hello?")
    assert [r.status_code for r in polls.both()] == [200, 200]


def test_signed_out_and_idle_timed_out_sessions_are_sent_to_sign_in(site, conversation):
    polls = Polls(signed_in(factories.make_staff(site, FRONT_DESK)), conversation)
    key = polls.client.session.session_key
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    for response in polls.both():
        assert response.status_code == 302
        assert response["Location"].startswith("/staff/sign-in/?next=/staff/inbox/")


def test_a_changed_password_or_a_deactivated_account_ends_the_session(site, conversation):
    for change in ("password", "inactive"):
        user = factories.make_staff(site, FRONT_DESK)
        polls = Polls(signed_in(user), conversation)
        if change == "password":
            user.set_password("another-long-password")
        else:
            user.is_active = False
        user.save()
        for response in polls.both():
            assert response.status_code == 302, change
            assert response["Location"].startswith("/staff/sign-in/"), change


def test_a_device_set_up_elsewhere_asks_this_session_for_a_code(site, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    polls = Polls(signed_in(user), conversation)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert statuses(polls.both()) == [(302, "/staff/sign-in/code/")] * 2


def test_a_removed_device_is_dropped_from_the_session_as_django_otp_does(site, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    client = signed_in(user)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    verified(client, device)
    polls = Polls(client, conversation)
    device.delete()  # the only one: no code is due, the session forgets the device
    assert [r.status_code for r in polls.both()] == [204, 204]
    assert DEVICE_ID_SESSION_KEY not in client.session


def test_an_unconfirmed_device_in_the_session_does_not_verify_it(site, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    client = signed_in(user)
    polls = Polls(client, conversation)
    draft = TOTPDevice.objects.create(user=user, name="draft", confirmed=False)
    verified(client, draft)  # forged: only a confirmed device is ever written there
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert statuses(polls.both()) == [(302, "/staff/sign-in/code/")] * 2


def test_an_administrator_who_must_set_up_a_second_factor_is_sent_there(site, conversation):
    polls = Polls(signed_in(factories.make_staff(site, SYSTEM_ADMINISTRATOR)), conversation)
    DeliverySettings.objects.filter(site=site).update(require_two_factor_for_admins=True)
    assert statuses(polls.both()) == [(302, "/staff/account/two-factor/")] * 2


def test_a_role_taken_away_refuses_the_poll(site, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    polls = Polls(signed_in(user), conversation)
    user.groups.remove(Group.objects.get(name=FRONT_DESK))
    user.groups.add(Group.objects.get(name=READ_ONLY))
    assert [r.status_code for r in polls.both()] == [403, 403]


def test_a_permission_taken_from_the_role_refuses_the_poll(site, conversation):
    polls = Polls(signed_in(factories.make_staff(site, FRONT_DESK)), conversation)
    Group.objects.get(name=FRONT_DESK).permissions.remove(
        Permission.objects.get(codename="work_inbox")
    )
    assert [r.status_code for r in polls.both()] == [403, 403]


def test_a_membership_taken_away_hides_the_site(site, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    polls = Polls(signed_in(user), conversation)
    StaffMembership.objects.filter(user=user).delete()
    assert [r.status_code for r in polls.both()] == [404, 404]


def test_a_chosen_site_taken_away_falls_back_to_another_one(site, pharmacy, conversation):
    user = factories.make_staff(site, FRONT_DESK)
    StaffMembership.objects.create(user=user, site=pharmacy)
    client = signed_in(user)
    client.post("/staff/site/", {"site": site.pk})
    polls = Polls(client, conversation)
    StaffMembership.objects.filter(user=user, site=site).delete()
    thread, listing = polls.both()
    assert thread.status_code == 404  # the conversation is the other site's
    assert listing.status_code == 200 and "Can we move" not in listing.json()["html"]


def test_several_sites_and_no_choice_take_the_first_as_the_full_guard_does(
    site, pharmacy, conversation
):
    user = factories.make_staff(site, FRONT_DESK)
    StaffMembership.objects.create(user=user, site=pharmacy)
    client = signed_in(user)
    first = client.get("/staff/inbox/").wsgi_request.site
    polls = Polls(client, conversation)
    expected = 204 if first == site else 404
    assert polls.both()[0].status_code == expected


def test_another_organization_cannot_poll_the_conversation(conversation, other_org_site):
    outsider = signed_in(factories.make_staff(other_org_site, FRONT_DESK))
    url = f"/staff/inbox/{conversation.pk}/poll/"
    assert outsider.get(url, {"token": "1"}).status_code == 404


def test_a_superuser_polls_through_the_full_guard(site, conversation):
    from django.contrib.auth.models import User

    root = User.objects.create_superuser("root", password="a-long-test-password")
    client = signed_in(root)
    client.post("/staff/site/", {"site": site.pk})
    polls = Polls(client, conversation)
    assert [r.status_code for r in polls.both()] == [204, 204]


def test_odd_ids_and_methods_answer_as_before(site, conversation):
    client = signed_in(factories.make_staff(site, FRONT_DESK))
    huge = 2**64
    assert client.get(f"/staff/inbox/{huge}/poll/", {"token": "1"}).status_code == 404
    watch = f"{huge},{conversation.pk}"
    url = f"/staff/inbox/{conversation.pk}/poll/"
    assert client.get(url, {"token": "x", "watch": watch}).status_code == 200
    assert client.post(url).status_code == 405
    assert client.get("/staff/inbox/poll/", {"token": "99999999999999999999.000000.1"})
    assert client.get("/staff/inbox/poll/", {"token": "1.2.3"}).status_code == 200


def test_the_quick_grant_never_differs_from_the_full_guard(site, pharmacy, rf):
    """Directly: for each person, the quick grant is None or the full guard's site."""
    from django.contrib.sessions.backends.db import SessionStore

    admin = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    reader = factories.make_staff(site, READ_ONLY)
    both = factories.make_staff(site, FRONT_DESK)
    StaffMembership.objects.create(user=both, site=pharmacy)
    for user, expected in [(admin, site.pk), (reader, None), (both, None)]:
        client = signed_in(user)
        request = rf.get("/staff/inbox/poll/")
        request.session = SessionStore(client.session.session_key)
        assert guard.quick_grant(request, "work_inbox") == expected, user


def test_a_session_signed_with_a_rotated_secret_is_renewed_as_django_does(
    site, conversation, settings
):
    polls = Polls(signed_in(factories.make_staff(site, FRONT_DESK)), conversation)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-" + "x" * 50
    assert [r.status_code for r in polls.both()] == [204, 204]


def test_a_part_of_the_statement_must_take_the_parameters_it_is_given():
    # A rule that gains a condition (and a parameter) must not shift the others.
    with pytest.raises(RuntimeError, match="update _grant_params"):
        guard._orm_sql(StaffMembership.objects.filter(user_id=-1, site_id=3), -1)
    assert guard._orm_sql(StaffMembership.objects.filter(user_id=-1), -1)
