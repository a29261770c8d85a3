import itertools

import pytest

from carebell.core import content, placeholders, segments
from carebell.core.vocab import CAPPED_KINDS, FORMAT_KINDS, Channel, Kind
from carebell.formats import service
from carebell.formats.defaults import LANGUAGES, all_defaults, default_template, keyword_reply

EVERY = list(itertools.product(FORMAT_KINDS, Channel, LANGUAGES))
SMS = [(k, lang) for k, c, lang in EVERY if c is Channel.SMS]
NO_STOP_HINT = {Kind.VERIFICATION, Kind.INBOX_REPLY}


def _id(case):
    return "-".join(str(part) for part in case)


def test_there_is_a_default_for_every_kind_channel_and_language():
    assert len(all_defaults()) == len(FORMAT_KINDS) * len(Channel) * len(LANGUAGES)


@pytest.mark.parametrize(("kind", "channel", "language"), EVERY, ids=map(_id, EVERY))
def test_every_default_validates_clean(kind, channel, language):
    t = default_template(kind, channel, language)
    problems = service.validate_template(
        channel, kind, t.subject, t.body, t.html_body, language=language
    )
    assert problems == []


@pytest.mark.parametrize(("kind", "channel", "language"), EVERY, ids=map(_id, EVERY))
def test_every_default_names_the_site_and_its_phone(kind, channel, language):
    body = default_template(kind, channel, language).body
    assert "#SITENAME#" in body
    assert "#SITEPHONE#" in body


@pytest.mark.parametrize(
    ("kind", "channel", "language"),
    [c for c in EVERY if c[1] is not Channel.EMAIL],
    ids=map(_id, [c for c in EVERY if c[1] is not Channel.EMAIL]),
)
def test_sms_and_call_defaults_carry_no_drug_or_diagnosis(kind, channel, language):
    body = default_template(kind, channel, language).body
    assert content.lint_minimum_necessary(channel, body) == []
    for name in placeholders.placeholders_in(body):
        assert not placeholders.CATALOGUE[name].sensitivity


@pytest.mark.parametrize(("kind", "language"), SMS, ids=map(_id, SMS))
def test_every_default_sms_fits_one_gsm7_segment_with_long_sample_data(kind, language):
    rendered = service.preview(Channel.SMS, kind, language, body=default_template(
        kind, Channel.SMS, language).body)  # fmt: skip
    assert rendered["encoding"] == "GSM-7", rendered["body"]
    assert rendered["segments"] == 1, rendered["body"]


def test_the_exempt_kinds_are_the_capped_appointment_and_treatment_kinds():
    assert content.EXEMPT_SMS_KINDS == CAPPED_KINDS


@pytest.mark.parametrize(("kind", "language"), SMS, ids=map(_id, SMS))
def test_automated_sms_defaults_tell_how_to_opt_out(kind, language):
    body = default_template(kind, Channel.SMS, language).body
    assert ("STOP" in body) is (kind not in NO_STOP_HINT)


@pytest.mark.parametrize("language", LANGUAGES)
def test_email_defaults_have_a_subject_text_and_html_with_labelled_links(language):
    t = default_template(Kind.APPT_CONFIRMATION, Channel.EMAIL, language)
    assert t.subject
    assert "#CONFIRMLINK#" in t.body
    assert '<a href="#CONFIRMLINK#">' in t.html_body
    assert t.html_body.startswith("<!doctype html>")


def test_a_regional_language_uses_its_base_defaults():
    assert default_template(Kind.BIRTHDAY, Channel.SMS, "es-MX").language == "es"


def test_there_are_no_defaults_in_other_languages():
    with pytest.raises(ValueError, match="no default templates"):
        default_template(Kind.BIRTHDAY, Channel.SMS, "fr")


@pytest.mark.parametrize(("keyword", "language"), list(itertools.product(["help", "stop", "start"],
                                                                   LANGUAGES)))  # fmt: skip
def test_keyword_replies_fit_one_gsm7_segment_and_name_the_site(keyword, language):
    text = keyword_reply(keyword, language)
    assert "#SITENAME#" in text
    rendered = service.preview(Channel.SMS, Kind.KEYWORD_REPLY, language, body=text)
    assert (rendered["encoding"], rendered["segments"]) == ("GSM-7", 1)


def test_the_help_reply_says_what_carriers_require():
    text = keyword_reply("help", "en")
    assert "Msg & data rates may apply" in text
    assert "STOP" in text
    assert "frequency" in text


def test_spanish_sms_defaults_avoid_letters_outside_gsm7():
    for kind, language in SMS:
        if language == "es":
            body = default_template(kind, Channel.SMS, language).body
            assert segments.ucs2_culprits(body) == [], kind
