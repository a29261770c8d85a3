import pytest

from carebell.core import content
from carebell.core.vocab import Channel, Kind


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("We now stock CBD oil", "cbd"),
        ("Ask about Cannabis products", "cannabis"),
        ("Our cannabinoids are in", "cannabinoid"),
        ("Nearby dispensaries", "dispensary"),
        ("MARIJUANA!", "marijuana"),
        ("delta-8 gummies", "delta-8"),
        ("aceite de cáñamo", "cáñamo"),
    ],
)
def test_a_restricted_word_blocks_the_message_with_the_word(text, word):
    [block] = content.find_restricted_words(text)
    assert block.reason == "word_restricted"
    assert block.word == word
    assert text[block.position :].lower().startswith(block.matched.lower())


@pytest.mark.parametrize(
    "text",
    [
        "Your healthcare team",
        "Thchurch",
        "hempstead",
        "Call Mr. Thcx",
        "cbdx",
        "Your refill is ready",
    ],
)
def test_only_whole_words_are_restricted(text):
    assert content.find_restricted_words(text) == []


def test_a_site_can_use_its_own_list():
    assert content.find_restricted_words("CBD in stock", words=["kratom"]) == []
    [block] = content.find_restricted_words("Kratom is back", words=["kratom"])
    assert block.word == "kratom"


def test_an_empty_list_restricts_nothing():
    assert content.find_restricted_words("cannabis", words=[]) == []


def test_the_outbound_check_looks_at_every_part_of_a_message():
    assert content.check_outbound(["Refill ready", None, "<p>fine</p>"]) is None
    block = content.check_outbound(["Hello", "<p>New THC line</p>"])
    assert (block.reason, block.word, block.matched) == ("word_restricted", "thc", "THC")
    assert "thc" in block.message


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.CALL])
def test_a_drug_or_diagnosis_placeholder_is_flagged_in_sms_and_calls(channel):
    flags = content.lint_minimum_necessary(channel, "#DRUGNAME# for #APPTREASON# #DRUGNAME#")
    assert [(f.code, f.token) for f in flags] == [
        ("minimum_necessary", "#DRUGNAME#"),
        ("minimum_necessary", "#APPTREASON#"),
    ]


def test_email_may_name_the_drug():
    assert content.lint_minimum_necessary(Channel.EMAIL, "#DRUGNAME#") == []


def test_an_exempt_sms_that_does_not_name_the_site_is_flagged():
    flags = content.lint_exempt_sms(Kind.APPT_REMINDER, "See you soon", "See you soon")
    assert [f.code for f in flags] == ["site_not_named"]


def test_the_sites_name_written_out_counts_as_naming_it():
    body = "Maple Clinic: see you soon"
    assert content.lint_exempt_sms(Kind.APPT_REMINDER, body, body, site_name="Maple Clinic") == []


def test_an_exempt_sms_over_one_segment_is_flagged():
    flags = content.lint_exempt_sms(Kind.RX_READY, "#SITENAME# x", "x" * 161)
    assert [f.code for f in flags] == ["over_one_segment"]
    assert "2 segments" in flags[0].message


def test_non_exempt_kinds_have_no_exempt_rules():
    assert content.lint_exempt_sms(Kind.BIRTHDAY, "Happy birthday", "x" * 300) == []


def test_an_automated_sms_without_a_stop_hint_is_flagged_but_a_code_is_not():
    assert [f.code for f in content.lint_stop_hint(Kind.WELCOME, "Hi")] == ["no_opt_out_hint"]
    assert content.lint_stop_hint(Kind.WELCOME, "Reply STOP to opt out") == []
    assert content.lint_stop_hint(Kind.VERIFICATION, "Code 123") == []


def test_template_lint_only_flags_and_never_blocks():
    flags = content.lint_template(Channel.SMS, Kind.RX_READY, "#DRUGNAME# ready", "Ibuprofen ready")
    assert {f.code for f in flags} == {"minimum_necessary", "site_not_named", "no_opt_out_hint"}
    assert all(isinstance(f, content.Flag) for f in flags)


def test_email_lint_has_no_sms_rules():
    assert content.lint_template(Channel.EMAIL, Kind.RX_READY, "Ready", "Ready") == []
