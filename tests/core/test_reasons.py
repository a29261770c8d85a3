from pathlib import Path

from carebell.core.reasons import CATALOGUE, Code, Reason, catalogue_markdown, reason, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reasons.md"


def test_every_code_has_a_catalogue_entry():
    assert set(CATALOGUE) == set(Code)


def test_the_docs_page_mirrors_the_catalogue():
    assert DOCS.read_text() == catalogue_markdown(), "regenerate docs/reasons.md"


def test_the_codes_other_modules_rely_on_exist():
    named = {
        "outside_window_moved_earlier", "contact_authority_none", "contact_end_dated",
        "no_preference", "preference_none", "no_contact_point", "contact_point_unparseable",
        "opted_out_sms", "opted_out_email", "not_verified", "no_consent", "quiet_hours",
        "cap_daily", "cap_weekly", "appointment_passed", "no_allowed_time",
        "channel_disabled_for_kind", "duplicate_contact_point", "word_restricted",
        "appointment_cancelled", "appointment_moved", "picked_up",
    }  # fmt: skip
    assert named <= {c.value for c in Code}


def test_a_reason_renders_its_parameters():
    r = reason(Code.WORD_RESTRICTED, word="cannabis")
    assert r.message == "The message contains the restricted word “cannabis”."
    assert r.param("word") == "cannabis"


def test_vocabulary_codes_read_as_words_in_a_sentence():
    from carebell.core.vocab import Category, Channel, Kind

    assert render(reason(Code.NO_PREFERENCE, category=Category.REFILL_REMINDER)) == (
        "The contact has no preference set for refill reminder messages."
    )
    assert render(reason(Code.CHANNEL_DISABLED_FOR_KIND, kind=Kind.RX_PICKUP_REMINDER,
                         channel=Channel.SMS)) == (
        "The site does not send prescription pickup reminder messages by SMS."
    )  # fmt: skip
    assert render(reason(Code.NO_CONTACT_POINT, channel="call")) == (
        "The contact has no voice call contact point."
    )


def test_a_missing_parameter_renders_as_a_question_mark_instead_of_failing():
    assert render(Reason(Code.NO_CONTACT_POINT)) == "The contact has no ? contact point."


def test_parameterless_reasons_are_shared():
    assert reason(Code.PICKED_UP) is reason(Code.PICKED_UP)


def test_reasons_compare_by_value_whatever_the_parameter_order():
    assert reason(Code.CAP_DAILY, day="d", at="a") == reason(Code.CAP_DAILY, at="a", day="d")
