"""Group messages through their entry points: who gets one, what it says and costs,
why a row is blocked, and a send stopped part-way taken up with nothing lost or
written twice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import GroupSend, MessageTemplate, OutboxMessage
from carebell.sends import group
from carebell.sends.messages import Texts
from carebell.sites.models import DeliverySettings
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories

pytestmark = pytest.mark.django_db

SMS = "Hello #PATIENTFIRSTNAME#, #SITENAME# is closed on Friday."
TEXTS = Texts("News from #SITENAME#", "Dear #PATIENTNAME#, we are closed on Friday.", SMS)


def reachable(site, *, pref="sms", mobile="+12025550123", email="", **patient):
    patient = factories.make_patient(site, **patient)
    contact = factories.make_contact(patient, relationship="self", first_name=patient.first_name)
    if mobile:
        factories.add_point(contact, ContactPointKind.MOBILE, mobile)
    if email:
        factories.add_point(contact, ContactPointKind.EMAIL, email)
    if pref is not None:
        factories.set_preference(contact, "general", pref)
    return patient


@pytest.fixture
def desk(site):
    return factories.make_staff(site, FRONT_DESK)


def sent_group(site, desk, patients, channels=("sms",), texts=TEXTS):
    g = group.create(site, [p.id for p in patients], channels=channels, by=desk)
    group.compose(g, texts, by=desk)
    g = group.start(g, by=desk)
    return group.run(g)


def test_every_selected_patient_gets_one_message_rendered_for_them(site, desk):
    ana = reachable(site, first_name="Ana", mobile="+12025550101")
    ben = reachable(site, first_name="Ben", mobile="+12025550102")
    left_out = reachable(site, first_name="Cy", mobile="+12025550103")
    g = group.create(site, [ana.id, ben.id, left_out.id], channels=["sms"], by=desk)
    group.select(g, [left_out.id], False, by=desk)
    group.compose(g, TEXTS, by=desk)
    g = group.run(group.start(g, by=desk))
    rows = OutboxMessage.objects.filter(kind="general").order_by("patient_id")
    assert [(r.patient_id, r.status, r.channel) for r in rows] == [
        (ana.id, "scheduled", "sms"),
        (ben.id, "scheduled", "sms"),
    ]
    assert rows[0].body == f"Hello Ana, {site.name} is closed on Friday."
    assert rows[0].segments == 1 and rows[0].to_address == "+12025550101"
    assert (g.status, g.total, g.done, g.queued, g.blocked) == ("done", 2, 2, 2, 0)


def test_an_email_and_a_text_go_to_a_patient_who_wants_both(site, desk):
    both = reachable(site, pref="email+sms", email="ana@example.org", first_name="Ana")
    sent_group(site, desk, [both], channels=("email", "sms"))
    rows = {r.channel: r for r in OutboxMessage.objects.filter(patient=both)}
    assert set(rows) == {"email", "sms"}
    assert rows["email"].subject == f"News from {site.name}"
    assert rows["email"].body.startswith("Dear Ana ")


def test_a_ladder_climbs_only_the_chosen_channels(site, desk):
    patient = reachable(site, pref="email|sms", email="ana@example.org")
    sent_group(site, desk, [patient], channels=("sms",))
    (row,) = OutboxMessage.objects.filter(patient=patient)
    assert row.channel == "sms" and row.status == "scheduled"


@pytest.mark.parametrize(
    ("arrange", "block", "code"),
    [
        ("general_disabled", "ineligible", "kind_disabled"),
        ("preference_none", "ineligible", "preference_none"),
        ("no_preference", "ineligible", "no_preference"),
        ("opted_out", "opted_out", "opted_out_sms"),
        ("no_mobile", "ineligible", "no_contact_point"),
    ],
)
def test_a_patient_who_may_not_receive_it_gets_a_blocked_row_with_its_reason(
    site, desk, arrange, block, code
):
    patient = reachable(
        site,
        pref={"preference_none": "none", "no_preference": None}.get(arrange, "sms"),
        mobile="" if arrange == "no_mobile" else "+12025550123",
    )
    if arrange == "general_disabled":
        DeliverySettings.objects.filter(site=site).update(general_channels=[])
        site.refresh_from_db()
    if arrange == "opted_out":
        from carebell.people.models import ContactPoint

        ContactPoint.objects.filter(contact__patient=patient).update(opted_out_sms=True)
    g = sent_group(site, desk, [patient])
    (row,) = OutboxMessage.objects.filter(patient=patient)
    assert (row.status, row.block_reason) == ("blocked", block)
    assert code in [r["code"] for r in row.reasons]
    assert (g.queued, g.blocked) == (0, 1)


def test_a_pharmacy_patient_without_consent_is_blocked_for_no_consent(pharmacy):
    desk = factories.make_staff(pharmacy, FRONT_DESK)
    patient = reachable(pharmacy)
    sent_group(pharmacy, desk, [patient])
    (row,) = OutboxMessage.objects.filter(patient=patient)
    assert (row.status, row.block_reason) == ("blocked", "no_consent")


def test_a_send_stopped_part_way_resumes_without_losing_or_repeating(site, desk):
    patients = [reachable(site, mobile=f"+120255502{i:02d}") for i in range(7)]
    g = group.create(site, [p.id for p in patients], channels=["sms"], by=desk)
    group.compose(g, TEXTS, by=desk)
    g = group.start(g, by=desk)
    g = group.run(g, batch_size=3, max_batches=1)
    assert (g.status, g.done) == ("sending", 3)
    assert OutboxMessage.objects.filter(kind="general").count() == 3
    # A runner that died holds the send until its lease ends: nobody else writes.
    GroupSend.objects.filter(pk=g.pk).update(lease_expires_at=timezone.now() + group.LEASE)
    assert group.process_one() is False
    GroupSend.objects.filter(pk=g.pk).update(lease_expires_at=timezone.now())
    # A recipient written but not marked done (as if a second runner had raced the
    # first) is not written twice: its occurrence key is stored already.
    g.recipients.filter(patient_id=patients[1].id).update(done_at=None)
    assert group.process_one() is True
    g.refresh_from_db()
    assert (g.status, g.done, g.queued) == ("done", 7, 7)
    rows = OutboxMessage.objects.filter(kind="general")
    assert sorted(rows.values_list("patient_id", flat=True)) == sorted(p.id for p in patients)


def test_the_summary_counts_messages_segments_and_cost(site, desk):
    DeliverySettings.objects.filter(site=site).update(sms_price_per_segment=Decimal("0.0100"))
    site.refresh_from_db()
    long_text = "Hello #PATIENTFIRSTNAME#. " + "x" * 200  # two segments
    patients = [reachable(site, mobile=f"+120255503{i:02d}") for i in range(3)]
    blocked = reachable(site, pref="none")
    g = group.create(site, [p.id for p in [*patients, blocked]], channels=["sms"], by=desk)
    group.compose(g, Texts(sms_body=long_text), by=desk)
    figures = group.summary(g, by=desk)
    assert figures["patients"] == 4 and figures["messages"] == 3
    assert figures["by_channel"] == {"sms": 3} and figures["by_block"] == {"ineligible": 1}
    assert figures["segments"] == 6 and figures["cost"] == "0.06"
    g.refresh_from_db()
    assert g.summary == figures  # kept for the next page of the review


def test_the_review_shows_every_rendered_message_a_page_at_a_time(site, desk):
    patients = [reachable(site, first_name=f"P{i}", mobile=f"+120255504{i:02d}") for i in range(5)]
    g = group.create(site, [p.id for p in patients], channels=["sms"], by=desk)
    group.compose(g, TEXTS, by=desk)
    first, after = group.preview(g, limit=3, by=desk)
    rest, end = group.preview(g, after=after, limit=3, by=desk)
    assert end is None and len(first) == 3 and len(rest) == 2
    assert [p.body.split(",")[0] for p in first + rest] == [f"Hello P{i}" for i in range(5)]


def test_a_saved_sms_format_needs_a_subject(site, desk):
    g = group.create(site, [reachable(site).id], channels=["sms"], by=desk)
    with pytest.raises(ValidationError) as refused:
        group.compose(g, TEXTS, save_sms_subject=" ", by=desk)
    assert "sms_subject" in refused.value.message_dict
    group.compose(g, TEXTS, save_sms_subject="Closed Friday", by=desk)
    saved = MessageTemplate.objects.get(site=site, channel="sms", kind="general")
    assert (saved.name, saved.body) == ("Closed Friday", SMS)
    assert saved.is_group and not saved.in_use
    assert saved in group.saved_formats(site)


def test_the_ten_most_recent_group_messages_are_offered(site, desk):
    patient = reachable(site)
    for i in range(12):
        sent_group(site, desk, [patient], texts=Texts(sms_body=f"Notice {i} from #SITENAME#"))
    recent = group.recent_texts(site)
    assert len(recent) == 10 and recent[0].sms_body == "Notice 11 from #SITENAME#"


@pytest.mark.parametrize(
    ("texts", "field"),
    [
        (Texts(sms_body=""), "sms_body"),
        (Texts(sms_body="Hi #APPTDATE#"), "sms_body"),
        (Texts(sms_body="x" * 1601), "sms_body"),
    ],
)
def test_bad_words_are_refused_with_the_field_named(site, desk, texts, field):
    g = group.create(site, [reachable(site).id], channels=["sms"], by=desk)
    with pytest.raises(ValidationError) as refused:
        group.compose(g, texts, by=desk)
    assert field in refused.value.message_dict
    g.refresh_from_db()
    assert g.sms_body == ""


def test_a_restricted_word_is_warned_of_and_the_dispatcher_blocks_it(site, desk):
    from carebell.dispatch.checks import check_content

    g = group.create(site, [reachable(site).id], channels=["sms"], by=desk)
    warnings = group.compose(g, Texts(sms_body="We now sell cannabis oil"), by=desk)
    assert any("cannabis" in w for w in warnings)
    group.run(group.start(g, by=desk))
    row = OutboxMessage.objects.select_related("site__delivery").get()
    (verdict,) = check_content([row], {}).values()
    assert verdict.block_reason == "word_restricted"


def test_bad_channels_and_patients_are_refused(site, other_org_site, desk):
    outsider_patient = factories.make_patient(other_org_site)
    with pytest.raises(ValidationError):
        group.create(site, [outsider_patient.id], channels=["sms"], by=desk)
    with pytest.raises(ValidationError):
        group.create(site, [reachable(site).id], channels=["call"], by=desk)
    with pytest.raises(ValidationError):
        group.create(site, [], channels=["sms"], by=desk)
    with pytest.raises(ValidationError):
        group.create(site, ["1; DROP TABLE"], channels=["sms"], by=desk)
    assert not GroupSend.objects.exists()


def test_a_send_is_started_once(site, desk):
    g = sent_group(site, desk, [reachable(site)])
    with pytest.raises(ValidationError):
        group.start(g, by=desk)
    assert OutboxMessage.objects.count() == 1


def test_staff_without_group_send_are_refused(site):
    reader = factories.make_staff(site, READ_ONLY)
    with pytest.raises(PermissionDenied):
        group.create(site, [reachable(site).id], channels=["sms"], by=reader)


def test_staff_of_another_site_are_refused(site, other_org_site):
    stranger = factories.make_staff(other_org_site, FRONT_DESK)
    with pytest.raises(PermissionDenied):
        group.create(site, [reachable(site).id], channels=["sms"], by=stranger)


def test_each_step_writes_part_of_the_send_and_says_how_far_it_got(site, desk):
    patients = [reachable(site, mobile=f"+120255505{i:02d}") for i in range(4)]
    g = group.create(site, [p.id for p in patients], channels=["sms"], by=desk)
    group.compose(g, TEXTS, by=desk)
    g = group.start(g, by=desk)
    assert group.progress(g)["percent"] == 0
    done = group.step(g, by=desk)
    assert done == {"id": g.pk, "status": "done", "total": 4, "done": 4, "queued": 4,
                    "blocked": 0, "percent": 100}  # fmt: skip
