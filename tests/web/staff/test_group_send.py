"""The group message wizard's pages: from the listing with its filters through the
three steps to the queue; flagged rows fixed in place; refusals for staff without
group_send and for another organization's send; bad input answered clearly."""

from __future__ import annotations

import pytest

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import GroupSend, OutboxMessage
from carebell.people.models import ContactPoint, ContactPreference
from carebell.sends import group as sends
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories

pytestmark = pytest.mark.django_db


def reachable(site, *, language="en", mobile="+12025550123", pref="sms", **fields):
    patient = factories.make_patient(site, language=language, **fields)
    contact = factories.make_contact(patient, relationship="self", first_name=patient.first_name)
    if mobile:
        factories.add_point(contact, ContactPointKind.MOBILE, mobile)
    if pref:
        factories.set_preference(contact, "general", pref)
    return patient


@pytest.fixture
def desk(staff_of):
    return staff_of(FRONT_DESK)


def start(client, **filters):
    response = client.post("/staff/patients/group/", filters)
    assert response.status_code == 302, response.content
    return GroupSend.objects.latest("id")


def test_the_listing_offers_a_group_message_with_its_filters(desk, site):
    reachable(site, language="es")
    page = desk.get("/staff/patients/?language=es").content.decode()
    assert "/staff/patients/group/" in page and 'name="language" value="es"' in page


def test_a_group_message_goes_from_the_filtered_listing_to_the_queue(desk, site):
    spanish = [reachable(site, language="es", mobile=f"+120255506{i:02d}") for i in range(3)]
    reachable(site, language="en")
    group = start(desk, language="es")
    assert set(group.recipients.values_list("patient_id", flat=True)) == {p.id for p in spanish}
    assert group.filters == {"language": "es"}

    step1 = desk.get(f"/staff/groups/{group.pk}/")
    assert step1.status_code == 200 and "3 of 3 patients selected" in step1.content.decode()
    shown = [str(p.id) for p in spanish]
    response = desk.post(
        f"/staff/groups/{group.pk}/",
        {"channels": ["sms"], "shown": shown, "pick": shown[:2], "action": "next"},
    )
    assert response.status_code == 302 and response["Location"].endswith("/message/")
    assert group.recipients.filter(selected=True).count() == 2

    step2 = desk.post(
        f"/staff/groups/{group.pk}/message/",
        {"sms_body": "Hola #PATIENTFIRSTNAME#, cerramos el viernes.", "action": "next"},
    )
    assert step2.status_code == 302 and step2["Location"].endswith("/review/")

    review = desk.get(f"/staff/groups/{group.pk}/review/").content.decode()
    assert "Hola Avery, cerramos el viernes." in review
    assert "Send to the message queue" in review

    sent = desk.post(f"/staff/groups/{group.pk}/send/")
    assert sent.status_code == 302
    assert desk.get(f"/staff/groups/{group.pk}/progress/").json()["done"] == 0
    progress = desk.post(f"/staff/groups/{group.pk}/progress/").json()  # the page's poll
    assert progress == {"id": group.pk, "status": "done", "total": 2, "done": 2,
                        "queued": 2, "blocked": 0, "percent": 100}  # fmt: skip
    assert OutboxMessage.objects.filter(kind="general", status="scheduled").count() == 2
    assert AuditEvent.objects.filter(action="send", object_type="messaging.groupsend").exists()


def test_select_none_then_all(desk, site):
    [reachable(site) for _ in range(3)]
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"action": "none"})
    assert not group.recipients.filter(selected=True).exists()
    desk.post(f"/staff/groups/{group.pk}/", {"action": "all"})
    assert group.recipients.filter(selected=False).count() == 0


def test_rows_lacking_a_preference_or_a_mobile_are_flagged_and_fixed_in_place(desk, site):
    patient = reachable(site, mobile="", pref="")
    group = start(desk)
    page = desk.get(f"/staff/groups/{group.pk}/").content.decode()
    assert page.count("flag-cell") == 3  # preference, mobile and email
    contact = patient.contacts.get()
    fix = f"/staff/groups/{group.pk}/fix/"
    desk.post(fix, {"contact": contact.pk, "what": "preference", "value": "sms"})
    desk.post(fix, {"contact": contact.pk, "what": "mobile", "value": "(202) 555-0144"})
    assert ContactPreference.objects.get(contact=contact, category="general").value == "sms"
    assert ContactPoint.objects.get(contact=contact, kind="mobile").value == "+12025550144"
    bad = desk.post(fix, {"contact": contact.pk, "what": "email", "value": "not an email"},
                    follow=True)  # fmt: skip
    assert "That is not an email address." in bad.content.decode()
    assert not ContactPoint.objects.filter(contact=contact, kind="email").exists()


def test_a_contact_outside_the_send_is_not_fixed_through_it(desk, site, other_org_site):
    reachable(site)
    group = start(desk)
    stranger = factories.make_contact(factories.make_patient(other_org_site))
    fix = {"contact": stranger.pk, "what": "preference", "value": "sms"}
    response = desk.post(f"/staff/groups/{group.pk}/fix/", fix)
    assert response.status_code == 404
    assert not ContactPreference.objects.filter(contact=stranger).exists()


def test_bad_words_are_refused_on_the_page(desk, site):
    reachable(site)
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    page = desk.post(
        f"/staff/groups/{group.pk}/message/", {"sms_body": "Hi #APPTDATE#", "action": "next"}
    )
    assert page.status_code == 200 and "APPTDATE" in page.content.decode()
    huge = desk.post(f"/staff/groups/{group.pk}/message/", {"sms_body": "x" * 5000})
    assert huge.status_code == 200 and "errors" in huge.content.decode()
    group.refresh_from_db()
    assert group.sms_body == ""


def test_no_channel_is_refused_with_a_message(desk, site):
    reachable(site)
    group = start(desk)
    response = desk.post(f"/staff/groups/{group.pk}/", {"action": "next"}, follow=True)
    assert "Choose email, SMS or both." in response.content.decode()


def test_a_save_as_format_without_subject_is_refused(desk, site):
    reachable(site)
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    page = desk.post(
        f"/staff/groups/{group.pk}/message/", {"sms_body": "Closed Friday", "save_sms": "on"}
    )
    assert "needs a subject" in page.content.decode()


def test_a_sent_group_is_offered_again_in_step_two(desk, site):
    patient = reachable(site)
    first = sends.create(site, [patient.id], channels=["sms"], by=desk.user)
    sends.compose(first, sends.Texts(sms_body="Flu shots at #SITENAME# this week"), by=desk.user)
    sends.run(sends.start(first, by=desk.user))
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    page = desk.get(f"/staff/groups/{group.pk}/message/").content.decode()
    assert "Flu shots at #SITENAME# this week" in page
    assert "Sent 2026-11-25 10:00" in page  # the site's time (New York), not UTC


def test_staff_without_group_send_are_refused(staff_of, site):
    reachable(site)
    reader = staff_of(READ_ONLY)
    assert reader.post("/staff/patients/group/", {}).status_code == 403
    assert not GroupSend.objects.exists()


def test_another_organizations_send_does_not_exist(desk, site, outsider):
    reachable(site)
    group = start(desk)
    for path in ("", "message/", "review/", "progress/"):
        assert outsider.get(f"/staff/groups/{group.pk}/{path}").status_code == 404
    assert outsider.post(f"/staff/groups/{group.pk}/send/").status_code == 404
    assert GroupSend.objects.get(pk=group.pk).status == "draft"


def test_the_review_pages_through_every_message(desk, site):
    [reachable(site, mobile=f"+120255507{i:02d}") for i in range(55)]
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    desk.post(f"/staff/groups/{group.pk}/message/", {"sms_body": "Hello #PATIENTFIRSTNAME#"})
    first = desk.get(f"/staff/groups/{group.pk}/review/").content.decode()
    assert first.count("Hello Avery") == 50 and 'rel="next"' in first
    after = group.recipients.order_by("patient_id")[49].patient_id
    rest = desk.get(f"/staff/groups/{group.pk}/review/?after={after}").content.decode()
    assert rest.count("Hello Avery") == 5
    assert desk.get(f"/staff/groups/{group.pk}/review/?after=nonsense").status_code == 200


def test_the_review_says_why_messages_are_blocked_in_words_not_codes(desk, site):
    reachable(site, mobile="+12025550801")
    reachable(site, mobile="+12025550802")
    ContactPoint.objects.filter(value="+12025550802").update(opted_out_sms=True)
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    desk.post(f"/staff/groups/{group.pk}/message/", {"sms_body": "Hello #PATIENTFIRSTNAME#"})
    page = desk.get(f"/staff/groups/{group.pk}/review/").content.decode()
    assert "1 message: The contact opted out of this way of sending." in page
    assert "The number opted out of text messages." in page  # the blocked row's reason
    assert "opted_out" not in page


def test_a_saved_format_fills_step_two_without_javascript(desk, site):
    from carebell.messaging.models import MessageTemplate

    MessageTemplate.objects.create(site=site, channel="sms", kind="general", name="Closed",
                                   subject="Closed", body="#SITENAME# is closed today.",
                                   is_group=True, in_use=False)  # fmt: skip
    reachable(site)
    group = start(desk)
    desk.post(f"/staff/groups/{group.pk}/", {"channels": ["sms"], "action": "next"})
    page = desk.post(f"/staff/groups/{group.pk}/message/", {"action": "source", "source": "0"})
    text = page.content.decode()
    assert page.status_code == 200 and "#SITENAME# is closed today.</textarea>" in text
    group.refresh_from_db()
    assert group.sms_body == ""  # filled in, not yet kept
    bad = desk.post(f"/staff/groups/{group.pk}/message/", {"action": "source", "source": "99"})
    assert bad.status_code == 200
