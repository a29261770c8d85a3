"""The inbox pages: per route and role, another organization answers 404, the idle
poll answers 204, replies and reviews through the entry points, bad forms refused
with a clear error."""

from __future__ import annotations

import pytest

from carebell.core.vocab import Kind, OutboxStatus
from carebell.inbox.models import Conversation, OptOutReview, QuickResponse
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ContactPoint
from carebell.sites.roles import FRONT_DESK, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests.inbox.conftest import PHONE, make_family, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(site, settings):
    settings.BASE_URL = "http://testserver"
    return make_family(site)


@pytest.fixture
def conversation(client, site, family):
    text(client, "please stop texting me")
    return Conversation.objects.get(site=site)  # the site sends from the number texted


def pages(conversation):
    c, review = conversation.pk, OptOutReview.objects.get().pk
    return {
        "get": ["/staff/inbox/", "/staff/inbox/poll/", "/staff/inbox/reviews/",
                f"/staff/inbox/{c}/", f"/staff/inbox/{c}/poll/", "/staff/quick-responses/"],
        "post": [f"/staff/inbox/{c}/reply/", f"/staff/inbox/{c}/assign/",
                 f"/staff/inbox/{c}/done/", f"/staff/inbox/reviews/{review}/"],
    }  # fmt: skip


def test_front_desk_reads_the_inbox_and_the_conversation(staff_of, conversation):
    desk = staff_of(FRONT_DESK)
    listing = desk.get("/staff/inbox/")
    assert listing.status_code == 200
    assert PHONE in listing.text and "Lena Ortiz" in listing.text
    assert 'class="count"' in listing.text  # the nav link counts this person's unread
    page = desk.get(f"/staff/inbox/{conversation.pk}/")
    assert page.status_code == 200
    assert "please stop texting me" in page.text
    assert f"/staff/patients/{conversation.site.patients.get().pk}/" in page.text
    assert "Opt the number out" in page.text
    after = desk.get("/staff/inbox/?show=unread")
    assert PHONE not in after.text


def test_a_reader_is_refused_every_inbox_route(staff_of, conversation):
    reader = staff_of(READ_ONLY)
    for url in pages(conversation)["get"]:
        assert reader.get(url).status_code == 403, url
    for url in pages(conversation)["post"]:
        assert reader.post(url, {"body": "x", "decision": "dismissed"}).status_code == 403, url
    assert not OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).exists()


def test_another_organization_finds_no_conversation(conversation, outsider):
    for url in pages(conversation)["get"][3:5]:
        assert outsider.get(url).status_code == 404, url
    for url in pages(conversation)["post"]:
        assert outsider.post(url, {"body": "x", "decision": "opted_out"}).status_code == 404, url
    assert PHONE not in outsider.get("/staff/inbox/").text
    assert OptOutReview.objects.get().decision == ""


def test_the_idle_poll_answers_no_content_until_a_text_arrives(client, staff_of, conversation):
    desk = staff_of(FRONT_DESK)
    page = desk.get(f"/staff/inbox/{conversation.pk}/")
    token = page.context["token"]
    poll = f"/staff/inbox/{conversation.pk}/poll/"
    assert desk.get(poll, {"token": token}).status_code == 204
    listing = desk.get("/staff/inbox/").context["token"]
    assert desk.get("/staff/inbox/poll/", {"token": listing}).status_code == 204
    text(client, "Hello?")
    changed = desk.get(poll, {"token": token})
    assert changed.status_code == 200 and "Hello?" in changed.json()["html"]
    assert "Hello?" in desk.get("/staff/inbox/poll/", {"token": listing}).json()["html"]


def test_polls_do_not_keep_an_idle_session_alive(staff_of, conversation, settings):
    """Idle logoff counts the person's requests, not the page's background polls."""
    from django.contrib.sessions.models import Session

    desk = staff_of(FRONT_DESK)
    page = desk.get(f"/staff/inbox/{conversation.pk}/")
    cookie = settings.SESSION_COOKIE_NAME
    assert cookie in page.cookies  # a page the person opened renews the session
    key = desk.cookies[cookie].value
    expires = Session.objects.get(session_key=key).expire_date
    for url, params in [
        (f"/staff/inbox/{conversation.pk}/poll/", {"token": page.context["token"]}),
        (f"/staff/inbox/{conversation.pk}/poll/", {"token": "stale", "beat": "1"}),
        ("/staff/inbox/poll/", {"token": "stale"}),
    ]:
        response = desk.get(url, params)
        assert response.status_code in (200, 204), url
        assert cookie not in response.cookies, url
    assert Session.objects.get(session_key=key).expire_date == expires
    Session.objects.filter(session_key=key).delete()  # the session ends
    assert desk.get("/staff/inbox/poll/", {"token": "stale"}).status_code == 302


def test_presence_shows_a_colleague_with_the_same_conversation_open(staff_of, conversation):
    first, second = staff_of(FRONT_DESK), staff_of(FRONT_DESK)
    first.get(f"/staff/inbox/{conversation.pk}/")
    page = second.get(f"/staff/inbox/{conversation.pk}/")
    assert first.user.get_username() in page.text
    beat = first.get(f"/staff/inbox/{conversation.pk}/poll/", {"token": "x", "beat": "1"})
    assert beat.json()["present"] == [second.user.get_username()]


def test_a_reply_is_queued_and_shown_with_its_status(staff_of, conversation):
    desk = staff_of(FRONT_DESK)
    response = desk.post(
        f"/staff/inbox/{conversation.pk}/reply/", {"body": "Noted, #PATIENTFIRSTNAME#."}
    )
    assert response.status_code == 302
    message = OutboxMessage.objects.get(kind=Kind.INBOX_REPLY)
    assert message.body == "Noted, Lena." and message.status == OutboxStatus.QUEUED
    page = desk.get(f"/staff/inbox/{conversation.pk}/")
    assert "Noted, Lena." in page.text and f"Reply by {desk.user.get_username()}" in page.text


def test_a_reply_to_an_opted_out_number_says_why_it_was_not_sent(staff_of, conversation):
    ContactPoint.objects.filter(value=PHONE).update(opted_out_sms=True)
    desk = staff_of(FRONT_DESK)
    response = desk.post(f"/staff/inbox/{conversation.pk}/reply/", {"body": "Hi"}, follow=True)
    assert "Not sent: The number opted out of text messages." in response.text
    assert OutboxMessage.objects.get(kind=Kind.INBOX_REPLY).status == OutboxStatus.BLOCKED


def test_the_thread_names_kinds_channels_statuses_and_blocks_in_words(
    client, staff_of, conversation
):
    text(client, "HELP")  # answered by an automatic keyword reply
    ContactPoint.objects.filter(value=PHONE).update(opted_out_sms=True)
    desk = staff_of(FRONT_DESK)
    desk.post(f"/staff/inbox/{conversation.pk}/reply/", {"body": "Line one\nline <two>"})
    page = desk.get(f"/staff/inbox/{conversation.pk}/").text
    page = page[page.index('<ol class="thread">') : page.index("</ol>")]
    assert "Automatic answer to a keyword · Text message (SMS)" in page
    assert '>Blocked</a> <span class="muted">The number opted out of text messages.' in page
    assert "Line one\nline &lt;two&gt;" in page  # escaped; CSS keeps the line break
    for code in ("keyword reply", "· sms", "opted_out", "(blocked)"):
        assert code not in page, code


@pytest.mark.parametrize(
    "form",
    [
        {"body": ""},
        {"body": "x" * 5000},
        {"body": "#CODE#"},
        {"body": "a", "patient": "zz"},
        {"body": "", "quick_response": "99999"},
    ],
)
def test_a_bad_reply_form_gets_a_clear_error_and_sends_nothing(staff_of, conversation, form):
    response = staff_of(FRONT_DESK).post(f"/staff/inbox/{conversation.pk}/reply/", form)
    assert response.status_code == 400
    assert 'class="errors"' in response.text
    assert not OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).exists()


def test_a_reply_crossing_a_colleagues_asks_first(staff_of, conversation):
    first, second = staff_of(FRONT_DESK), staff_of(FRONT_DESK)
    seen = first.get(f"/staff/inbox/{conversation.pk}/").context["thread"].last_reply_id
    second.post(f"/staff/inbox/{conversation.pk}/reply/", {"body": "We will stop."})
    form = {"body": "Sure.", "seen_reply": seen}
    asked = first.post(f"/staff/inbox/{conversation.pk}/reply/", form)
    assert asked.status_code == 200 and "Someone else replied" in asked.text
    assert OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).count() == 1
    first.post(f"/staff/inbox/{conversation.pk}/reply/", {**form, "confirm": "1"})
    assert OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).count() == 2


def test_the_review_opts_the_number_out_in_one_click(staff_of, conversation):
    review = OptOutReview.objects.get()
    listing = staff_of(FRONT_DESK).get("/staff/inbox/reviews/")
    assert "please stop texting me" in listing.text
    staff_of(FRONT_DESK).post(f"/staff/inbox/reviews/{review.pk}/", {"decision": "opted_out"})
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is True
    again = staff_of(FRONT_DESK).post(
        f"/staff/inbox/reviews/{review.pk}/", {"decision": "dismissed"}, follow=True
    )
    assert "already reviewed" in again.text


def test_assign_done_and_reopen(staff_of, conversation):
    desk = staff_of(FRONT_DESK)
    base = f"/staff/inbox/{conversation.pk}/"
    desk.post(base + "assign/", {"user": desk.user.pk})
    assert PHONE in desk.get("/staff/inbox/?show=mine").text
    bad = desk.post(base + "assign/", {"user": "not-a-number"}, follow=True)
    assert "not a number" in bad.text
    desk.post(base + "done/")
    assert PHONE in desk.get("/staff/inbox/?show=done").text
    desk.post(base + "done/", {"reopen": "1"})
    assert PHONE in desk.get("/staff/inbox/").text


def test_quick_responses_are_written_by_administrators(staff_of, site):
    admin, desk = staff_of(SYSTEM_ADMINISTRATOR), staff_of(FRONT_DESK)
    assert desk.get("/staff/quick-responses/new/").status_code == 403
    refused = admin.post("/staff/quick-responses/new/", {"name": "Code", "body": "#CODE#"})
    assert refused.status_code == 400 and "#CODE#" in refused.text
    assert (
        admin.post("/staff/quick-responses/new/", {"name": "x" * 500, "body": "Hi"}).status_code
        == 400
    )
    saved = admin.post("/staff/quick-responses/new/", {"name": "Ready", "body": "Hi #PATIENTNAME#"})
    assert saved.status_code == 302
    quick = QuickResponse.objects.get()
    assert "Ready" in desk.get("/staff/quick-responses/").text
    admin.post(f"/staff/quick-responses/{quick.pk}/delete/")
    assert not QuickResponse.objects.exists()


def test_quick_responses_of_another_organization_are_not_found(outsider, site):
    quick = QuickResponse.objects.create(site=site, name="Ready", body="Hi")
    assert outsider.get(f"/staff/quick-responses/{quick.pk}/").status_code == 404
    assert outsider.post(f"/staff/quick-responses/{quick.pk}/delete/").status_code == 404
    assert QuickResponse.objects.exists()


def test_the_delivery_settings_offer_the_reply_at_once_minutes(staff_of, site):
    page = staff_of(SYSTEM_ADMINISTRATOR).get("/staff/settings/delivery/")
    assert 'name="reply_at_once_minutes"' in page.text


def test_staff_of_another_site_of_the_organization_find_no_conversation(
    conversation, staff_of, pharmacy
):
    neighbour = staff_of(FRONT_DESK, at=pharmacy)
    assert neighbour.get(f"/staff/inbox/{conversation.pk}/").status_code == 404
    assert (
        neighbour.post(f"/staff/inbox/{conversation.pk}/reply/", {"body": "x"}).status_code == 404
    )
    assert PHONE not in neighbour.get("/staff/inbox/").text


def test_only_staff_who_work_the_inbox_are_offered_for_assignment(staff_of, conversation):
    desk, reader = staff_of(FRONT_DESK), staff_of(READ_ONLY)
    offered = desk.get(f"/staff/inbox/{conversation.pk}/").context["users"]
    assert desk.user in offered and reader.user not in offered


def test_a_page_watches_the_delivery_of_its_newest_pending_messages():
    import datetime as dt

    from carebell.inbox.thread import MAX_WATCHED, Entry, EntryKind, Thread

    at = dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC)
    entries = [
        Entry(EntryKind.REPLY, at, "hi", message_id=i, status="queued" if i > 5 else "delivered")
        for i in range(1, 152)
    ]
    loaded = Thread(conversation=None, people=[], entries=entries, last_reply_id=0, opted_out=False)
    assert loaded.watched == list(range(152 - MAX_WATCHED, 152))
