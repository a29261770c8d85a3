"""Verification codes from the patient panel and the patient page: send, enter what
the patient reads back, see the state — per role, and never for another site's point."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import OutboxMessage
from carebell.people import verification
from carebell.people.models import ContactPoint, VerificationCode
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories

pytestmark = pytest.mark.django_db

NUMBER = "+12025550123"


@pytest.fixture
def point(site):
    contact = factories.make_contact(factories.make_patient(site, first_name="Ana"))
    return factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)


def urls(point) -> tuple[str, str]:
    args = [point.contact.patient_id, point.pk]
    return reverse("staff:send-code", args=args), reverse("staff:verify-point", args=args)


def digits_sent() -> str:
    body = OutboxMessage.objects.filter(kind="verification").latest("id").body
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_front_desk_sends_a_code_and_enters_it(staff_of, point):
    client = staff_of(FRONT_DESK)
    send, check = urls(point)
    response = client.post(send)
    assert response.status_code == 302 and response["Location"] == check
    page = client.get(check)
    assert page.status_code == 200 and b"5 tries left" in page.content
    response = client.post(check, {"code": digits_sent()})
    assert response.status_code == 302
    stored = ContactPoint.objects.get()
    assert stored.verified_at is not None and stored.verified_method == "staff"
    panel = client.get(reverse("staff:patient", args=[point.contact.patient_id]))
    assert b"staff" in panel.content and b"Verify again" in panel.content


def test_a_wrong_code_says_how_many_tries_are_left(staff_of, point):
    client = staff_of(FRONT_DESK)
    send, check = urls(point)
    client.post(send)
    wrong = f"{(int(digits_sent()) + 1) % 10**6:06d}"
    response = client.post(check, {"code": wrong})
    assert response.status_code == 400 and b"4 tries left" in response.content
    assert ContactPoint.objects.get().verified_at is None


@pytest.mark.parametrize("typed", ["", "12345", "abcdef", "1" * 21, "12-34-56"])
def test_a_malformed_code_is_a_clear_error_and_spends_no_try(staff_of, point, typed):
    client = staff_of(FRONT_DESK)
    send, check = urls(point)
    client.post(send)
    response = client.post(check, {"code": typed})
    assert response.status_code == 400 and b'class="error"' in response.content
    assert VerificationCode.objects.get().wrong_tries == 0


def test_the_fourth_code_in_an_hour_is_refused_with_a_message(staff_of, point):
    client = staff_of(FRONT_DESK)
    send, _check = urls(point)
    for _ in range(3):
        client.post(send)
    response = client.post(send, follow=True)
    assert b"last hour" in response.content
    assert VerificationCode.objects.count() == 3


def test_read_only_staff_may_not_send_or_check(staff_of, point):
    client = staff_of(READ_ONLY)
    send, check = urls(point)
    assert client.post(send).status_code == 403
    assert client.get(check).status_code == 403
    assert VerificationCode.objects.count() == 0


def test_another_organization_never_reaches_a_point(outsider, point):
    send, check = urls(point)
    assert outsider.post(send).status_code == 404
    assert outsider.get(check).status_code == 404
    assert outsider.post(check, {"code": "123456"}).status_code == 404
    assert VerificationCode.objects.count() == 0


def test_another_site_of_the_organization_never_reaches_a_point(staff_of, org, point):
    client = staff_of(FRONT_DESK, at=factories.make_site(org, name="Uptown"))
    send, check = urls(point)
    assert client.post(send).status_code == 404 and client.get(check).status_code == 404


def test_a_point_must_belong_to_the_patient_in_the_address(staff_of, site, point):
    other = factories.make_patient(site)
    url = reverse("staff:send-code", args=[other.pk, point.pk])
    assert staff_of(FRONT_DESK).post(url).status_code == 404


def test_sending_needs_a_post(staff_of, point):
    send, _check = urls(point)
    assert staff_of(FRONT_DESK).get(send).status_code == 405


# The patient page ----------------------------------------------------------------------------


def test_the_patient_types_the_code_on_the_page(client, site):
    contact = factories.make_contact(factories.make_patient(site))
    email = factories.add_point(contact, ContactPointKind.EMAIL, "rosa@example.org")
    issued = verification.issue_code(email, system="test")
    path = urlsplit(issued.verify_url).path
    page = client.get(path)
    assert page.status_code == 200 and b"r***@example.org" in page.content
    assert b"rosa@example.org" not in page.content
    wrong = client.post(path, {"code": "abc"})
    assert wrong.status_code == 400 and VerificationCode.objects.get().wrong_tries == 0
    done = client.post(path, {"code": digits_sent()})
    assert done.status_code == 200 and b"is verified" in done.content
    assert ContactPoint.objects.get().verified_method == "patient_page"


def test_a_bad_page_link_reveals_nothing(client):
    response = client.get("/p/verify/not-a-token")
    assert response.status_code == 404 and b"not valid" in response.content


def test_the_page_closes_after_five_wrong_tries(client, point):
    issued = verification.issue_code(point, system="test")
    path = urlsplit(issued.verify_url).path
    wrong = f"{(int(digits_sent()) + 1) % 10**6:06d}"
    for _ in range(5):
        client.post(path, {"code": wrong})
    last = client.post(path, {"code": digits_sent()})
    assert last.status_code == 400 and b"no longer works" in last.content
    assert ContactPoint.objects.get().verified_at is None
