from datetime import date

import pytest

from carebell.core.channels import (
    ChannelChooser,
    ContactFacts,
    ContactPointFacts,
    Delivery,
    choose_channels,
    plan_recipients,
)
from carebell.core.reasons import Code
from carebell.core.vocab import Authority, Category, Channel, Kind, Preference
from carebell.core.windows import DeliverySettings

TODAY = date(2024, 6, 1)
MOBILE = ContactPointFacts("+12025550100")
HOME = ContactPointFacts("+12025550199")
EMAIL = ContactPointFacts("pat@example.org")
OPEN = DeliverySettings()


def contact(pref=Preference.SMS, category=Category.REMINDERS, **kw):
    base = {"contact_id": 1, "mobile": MOBILE, "email": EMAIL, "preferences": {category: pref}}
    return ContactFacts(**{**base, **kw})


def channels(choice):
    return [d.channel for d in choice.deliveries]


def codes(choice):
    return [r.code for r in choice.reasons]


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"authority": Authority.NONE}, Code.CONTACT_AUTHORITY_NONE),
        ({"end_date": TODAY}, Code.CONTACT_END_DATED),
        ({"end_date": date(2020, 1, 1)}, Code.CONTACT_END_DATED),
        ({"pref": Preference.BLANK}, Code.NO_PREFERENCE),
        ({"pref": Preference.NONE}, Code.PREFERENCE_NONE),
        ({"category": Category.RECALLS}, Code.NO_PREFERENCE),
        ({"mobile": None}, Code.NO_CONTACT_POINT),
        ({"mobile": ContactPointFacts("")}, Code.NO_CONTACT_POINT),
        ({"mobile": ContactPointFacts("555", parses=False)}, Code.CONTACT_POINT_UNPARSEABLE),
        (
            {"mobile": ContactPointFacts("+12025550100", opted_out=frozenset({Channel.SMS}))},
            Code.OPTED_OUT_SMS,
        ),
    ],
)
def test_an_ineligible_contact_gets_nothing_and_a_reason(kw, code):
    choice = choose_channels(contact(**kw), Kind.APPT_REMINDER, OPEN, TODAY)
    assert not choice.eligible
    assert codes(choice) == [code]


@pytest.mark.parametrize("authority", [Authority.BLANK, Authority.JOINT, Authority.EXCLUSIVE])
def test_blank_joint_and_exclusive_authority_may_receive(authority):
    choice = choose_channels(contact(authority=authority), Kind.APPT_REMINDER, OPEN, TODAY)
    assert choice.deliveries == (Delivery(1, Channel.SMS, "+12025550100"),)


def test_a_future_end_date_still_receives():
    c = contact(end_date=date(2024, 6, 2))
    assert choose_channels(c, Kind.APPT_REMINDER, OPEN, TODAY).eligible


@pytest.mark.parametrize(
    ("pref", "kw", "used", "why"),
    [
        (Preference.EMAIL_OR_SMS, {}, [Channel.EMAIL], []),
        (
            Preference.EMAIL_OR_SMS,
            {"email": None},
            [Channel.SMS],
            [Code.NO_CONTACT_POINT, Code.LADDER_STEP_USED],
        ),
        (Preference.SMS_OR_CALL, {"mobile": None, "home": HOME}, [Channel.CALL], None),
        (Preference.EMAIL_OR_SMS_OR_CALL, {"email": None, "mobile": None}, [], None),
        (Preference.EMAIL_AND_SMS, {}, [Channel.EMAIL, Channel.SMS], []),
        (Preference.EMAIL_AND_SMS, {"email": None}, [Channel.SMS], [Code.NO_CONTACT_POINT]),
        (Preference.ALL, {"home": HOME}, [Channel.EMAIL, Channel.SMS, Channel.CALL], []),
        (Preference.CALL, {}, [Channel.CALL], []),  # calls fall back to the mobile
    ],
)
def test_preferences_pick_channels(pref, kw, used, why):
    choice = choose_channels(contact(pref, **kw), Kind.APPT_REMINDER, OPEN, TODAY)
    assert channels(choice) == used
    if why is not None:
        assert codes(choice) == why


def test_ladder_skips_missing_email():
    c = contact(Preference.EMAIL_OR_SMS, email=None)
    choice = choose_channels(c, Kind.APPT_REMINDER, OPEN, TODAY)
    assert choice.deliveries == (Delivery(1, Channel.SMS, "+12025550100"),)


def test_ladder_skips_an_opted_out_rung():
    c = contact(
        Preference.SMS_OR_CALL,
        mobile=ContactPointFacts("+12025550100", opted_out=frozenset({Channel.SMS})),
    )
    assert channels(choose_channels(c, Kind.APPT_REMINDER, OPEN, TODAY)) == [Channel.CALL]


def test_calls_go_to_the_home_phone_first():
    c = contact(Preference.CALL, home=HOME)
    assert choose_channels(c, Kind.APPT_REMINDER, OPEN, TODAY).deliveries[0].address == HOME.value


def test_only_verified_skips_unverified_points():
    s = DeliverySettings(only_verified=True)
    c = contact(Preference.EMAIL_AND_SMS, email=ContactPointFacts("a@b.org", verified=True))
    choice = choose_channels(c, Kind.APPT_REMINDER, s, TODAY)
    assert channels(choice) == [Channel.EMAIL] and codes(choice) == [Code.NOT_VERIFIED]


def test_opt_in_sites_text_only_numbers_with_consent():
    s = DeliverySettings(require_opt_in=True)
    assert codes(choose_channels(contact(), Kind.APPT_REMINDER, s, TODAY)) == [Code.NO_CONSENT]
    consented = ContactPointFacts("+12025550100", consented=frozenset({Channel.SMS}))
    assert choose_channels(contact(mobile=consented), Kind.APPT_REMINDER, s, TODAY).eligible


def test_opt_in_does_not_apply_to_email():
    s = DeliverySettings(require_opt_in=True)
    assert choose_channels(contact(Preference.EMAIL), Kind.APPT_REMINDER, s, TODAY).eligible


def test_site_channels_per_kind_intersect_the_preference():
    s = DeliverySettings(kind_channels={Kind.REFILL_DUE: frozenset({Channel.EMAIL})})
    c = contact(Preference.EMAIL_AND_SMS, category=Category.REFILL_REMINDER)
    choice = choose_channels(c, Kind.REFILL_DUE, s, TODAY)
    assert channels(choice) == [Channel.EMAIL]
    assert codes(choice) == [Code.CHANNEL_DISABLED_FOR_KIND]


def test_a_ladder_climbs_past_a_channel_the_site_disabled():
    s = DeliverySettings(kind_channels={Kind.APPT_REMINDER: frozenset({Channel.SMS})})
    choice = choose_channels(contact(Preference.EMAIL_OR_SMS), Kind.APPT_REMINDER, s, TODAY)
    assert channels(choice) == [Channel.SMS]


def test_a_kind_the_site_disabled_reaches_nobody():
    s = DeliverySettings(kind_channels={Kind.BIRTHDAY: frozenset()})
    c = contact(Preference.SMS, category=Category.BIRTHDAY)
    assert codes(choose_channels(c, Kind.BIRTHDAY, s, TODAY)) == [Code.KIND_DISABLED]


def test_transactional_kinds_are_not_chosen_by_preference():
    with pytest.raises(ValueError, match="not governed"):
        choose_channels(contact(), Kind.VERIFICATION, OPEN, TODAY)


def test_both_parents_are_told_but_a_shared_phone_gets_one_copy():
    mother = contact(Preference.EMAIL_AND_SMS, contact_id="mother", position=1)
    father = contact(
        Preference.EMAIL_AND_SMS,
        contact_id="father",
        position=2,
        email=ContactPointFacts("dad@example.org"),
    )
    mother_choice, father_choice = plan_recipients(
        [father, mother], Kind.APPT_REMINDER, OPEN, TODAY
    )
    assert channels(mother_choice) == [Channel.EMAIL, Channel.SMS]
    assert [d.address for d in father_choice.deliveries] == ["dad@example.org"]
    assert codes(father_choice) == [Code.DUPLICATE_CONTACT_POINT]


def test_a_second_contact_set_to_no_contact_is_left_out():
    first = contact(contact_id="a")
    second = contact(Preference.NONE, contact_id="b", position=2)
    choices = plan_recipients([first, second], Kind.APPT_REMINDER, OPEN, TODAY)
    assert [c.eligible for c in choices] == [True, False]


def test_a_chooser_decides_once_for_kinds_of_one_category():
    chooser = ChannelChooser(OPEN, [Kind.APPT_CONFIRMATION, Kind.APPT_REMINDER])
    choices = chooser.choose(contact(Preference.EMAIL_OR_SMS, email=None), TODAY)
    assert choices[Kind.APPT_CONFIRMATION] is choices[Kind.APPT_REMINDER]
    assert channels(choices[Kind.APPT_REMINDER]) == [Channel.SMS]


def test_a_chooser_names_the_right_kind_when_a_channel_is_disabled_for_it():
    s = DeliverySettings(kind_channels={Kind.REFILL_DUE: frozenset({Channel.SMS})})
    kinds = [Kind.REFILL_DUE, Kind.REFILL_PAST_DUE]
    c = contact(Preference.EMAIL_AND_SMS, category=Category.REFILL_REMINDER)
    choices = ChannelChooser(s, kinds).choose(c, TODAY)
    assert channels(choices[Kind.REFILL_DUE]) == [Channel.SMS]
    assert choices[Kind.REFILL_DUE].reasons[0].param("kind") == "refill_due"
    assert channels(choices[Kind.REFILL_PAST_DUE]) == [Channel.EMAIL, Channel.SMS]


def test_a_chooser_agrees_with_choose_channels():
    kinds = [Kind.APPT_REMINDER, Kind.BIRTHDAY, Kind.RX_READY]
    c = contact(Preference.SMS_OR_CALL, home=HOME)
    choices = ChannelChooser(OPEN, kinds).choose(c, TODAY)
    assert choices == {k: choose_channels(c, k, OPEN, TODAY) for k in kinds}
