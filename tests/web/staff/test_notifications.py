"""Staff notifications: the site's list, newest first, read per person, the unread
count in the menu — never another organization's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.inbox.models import NotificationRead, StaffNotification
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR

pytestmark = pytest.mark.django_db


def note(site, text="Ana Quintero cancelled Tuesday's visit", minutes_ago=0, kind="cancellation"):
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return StaffNotification.objects.create(site=site, kind=kind, text=text, created_at=at)


@pytest.mark.parametrize("role", [SYSTEM_ADMINISTRATOR, FRONT_DESK, PHARMACY_STAFF])
def test_inbox_roles_see_their_sites_notifications_newest_first(
    staff_of, site, other_org_site, role
):
    note(site, "Older one", minutes_ago=30)
    note(site, "Newer one")
    note(other_org_site, "Theirs")
    page = staff_of(role).get("/staff/notifications/").content.decode()
    assert page.index("Newer one") < page.index("Older one") and "Theirs" not in page


def test_a_reader_without_the_inbox_permission_is_refused(staff_of, site):
    note(site)
    assert staff_of(READ_ONLY).get("/staff/notifications/").status_code == 403


def test_the_menu_counts_what_this_person_has_not_read(staff_of, site, other_org_site):
    note(site), note(site), note(other_org_site)
    client = staff_of(FRONT_DESK)
    page = client.get("/staff/").content.decode()
    assert 'class="count" aria-label="2 unread">2<' in page


def test_marking_read_is_per_person(staff_of, site):
    first, second = note(site), note(site)
    dana, eli = staff_of(FRONT_DESK), staff_of(FRONT_DESK)
    dana.post("/staff/notifications/read/", {"notification": first.pk})
    assert NotificationRead.objects.filter(notification=first, user=dana.user).exists()
    unread_for_dana = dana.get("/staff/notifications/", {"show": "unread"}).context["notes"]
    assert [n.pk for n in unread_for_dana] == [second.pk]
    unread_for_eli = eli.get("/staff/notifications/", {"show": "unread"}).context["notes"]
    assert {n.pk for n in unread_for_eli} == {first.pk, second.pk}


def test_mark_all_read_and_a_double_click_mark_once(staff_of, site):
    note(site), note(site)
    client = staff_of(FRONT_DESK)
    client.post("/staff/notifications/read/", {"all": "1"})
    client.post("/staff/notifications/read/", {"all": "1"})
    assert NotificationRead.objects.filter(user=client.user).count() == 2


def test_another_organizations_notification_cannot_be_marked(outsider, site):
    ours = note(site)
    outsider.post("/staff/notifications/read/", {"notification": ours.pk})
    assert not NotificationRead.objects.exists()


@pytest.mark.parametrize("value", ["", "abc", "99999999"])
def test_a_bad_notification_id_changes_nothing(staff_of, site, value):
    note(site)
    response = staff_of(FRONT_DESK).post(
        "/staff/notifications/read/", {"notification": value}, follow=True
    )
    assert response.status_code == 200 and "Nothing new to mark" in response.content.decode()
    assert not NotificationRead.objects.exists()


def test_the_list_takes_a_bounded_number_of_queries(staff_of, site,
                                                    django_assert_max_num_queries):  # fmt: skip
    for i in range(40):
        note(site, f"Note {i}")
    client = staff_of(FRONT_DESK)
    with django_assert_max_num_queries(30):
        client.get("/staff/notifications/")


def test_a_bad_page_link_shows_the_newest(staff_of, site):
    note(site, "Only one")
    page = staff_of(FRONT_DESK).get("/staff/notifications/", {"before": "bogus"}).content
    assert b"Only one" in page
