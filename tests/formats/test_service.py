from carebell.core.vocab import Channel, Kind
from carebell.formats import service


def codes(problems, severity=None):
    return [p.code for p in problems if severity is None or p.severity == severity]


def test_an_unknown_placeholder_is_refused_with_where_it_is():
    problems = service.validate_template(Channel.SMS, Kind.APPT_REMINDER, "", "#SITENAME# #FOO#")
    [error] = [p for p in problems if p.is_error]
    assert (error.code, error.token, error.column) == ("unknown_placeholder", "#FOO#", 12)


def test_a_disallowed_placeholder_in_the_email_subject_or_html_is_refused():
    problems = service.validate_template(
        Channel.EMAIL, Kind.BIRTHDAY, "Hi #CODE#", "Happy birthday from #SITENAME#",
        "<p>#DRUGNAME#</p>",
    )  # fmt: skip
    assert {(p.field, p.code) for p in problems if p.is_error} == {
        ("subject", "disallowed_placeholder"),
        ("html_body", "disallowed_placeholder"),
    }


def test_an_sms_label_is_not_checked_for_placeholders():
    problems = service.validate_template(
        Channel.SMS, Kind.GENERAL, "#anything#", "#SITENAME#: hi. STOP to opt out"
    )
    assert problems == []


def test_an_empty_body_is_refused():
    assert "empty_body" in codes(service.validate_template(Channel.SMS, Kind.GENERAL, "", "  "))


def test_an_email_needs_a_subject():
    problems = service.validate_template(Channel.EMAIL, Kind.GENERAL, "", "#SITENAME#")
    assert codes(problems, "error") == ["empty_subject"]


def test_an_email_over_100_kb_is_refused():
    problems = service.validate_template(Channel.EMAIL, Kind.GENERAL, "Hi", "x" * 102_401)
    assert "email_too_large" in codes(problems, "error")


def test_an_sms_over_ten_segments_is_refused():
    problems = service.validate_template(Channel.SMS, Kind.GENERAL, "", "x" * (153 * 10 + 1))
    assert "sms_too_long" in codes(problems, "error")
    ten = service.validate_template(Channel.SMS, Kind.GENERAL, "", "x" * (153 * 10))
    assert "sms_too_long" not in codes(ten)


def test_script_in_email_html_is_refused():
    problems = service.validate_template(
        Channel.EMAIL, Kind.GENERAL, "Hi", "#SITENAME#", '<img src=x onerror="alert(1)">'
    )
    assert "unsafe_html" in codes(problems, "error")


def test_flags_are_warnings_that_never_refuse_a_template():
    problems = service.validate_template(Channel.SMS, Kind.RX_READY, "", "Your #DRUGNAME# is ready")
    assert codes(problems, "error") == []
    assert set(codes(problems, "warning")) == {
        "minimum_necessary", "site_not_named", "no_opt_out_hint"}  # fmt: skip


def test_smart_quotes_are_flagged_with_a_replacement():
    problems = service.validate_template(
        Channel.SMS, Kind.GENERAL, "", "It\u2019s #SITENAME#. STOP"
    )
    [warning] = [p for p in problems if p.code == "forces_ucs2"]
    assert 'use "\'" instead' in warning.message


def test_a_restricted_word_in_a_template_is_a_warning_that_its_messages_will_be_blocked():
    problems = service.validate_template(Channel.SMS, Kind.GENERAL, "", "CBD sale at #SITENAME#")
    assert "word_restricted" in codes(problems, "warning")


def test_a_link_in_a_call_script_is_flagged():
    problems = service.validate_template(Channel.CALL, Kind.REVIEW_REQUEST, "", "#SITENAME# "
                                         "#REVIEWLINK#")  # fmt: skip
    assert codes(problems) == ["link_in_call"]


def test_errors_become_a_django_validation_error_by_field():
    problems = service.validate_template(Channel.EMAIL, Kind.GENERAL, "", "#FOO#")
    error = service.as_validation_error(problems)
    assert set(error.message_dict) == {"body", "subject"}
    assert service.as_validation_error([]) is None


def test_preview_shows_an_sms_as_the_patient_gets_it_with_its_figures():
    result = service.preview(
        Channel.SMS, Kind.APPT_REMINDER, "en", body="#SITENAME#: #APPTDATE# #APPTTIME#. STOP",
        site={"name": "Oak Clinic", "time_zone": "America/Los_Angeles"},
    )  # fmt: skip
    assert result["body"] == "Oak Clinic: Wed, Sep 30 11:30 AM. STOP"
    assert (result["encoding"], result["segments"]) == ("GSM-7", 1)
    assert result["characters"] == len(result["body"])
    assert result["errors"] == [] and result["warnings"] == []


def test_preview_applies_smart_encoding_when_the_site_uses_it():
    body = "#SITENAME#: it\u2019s here. STOP"
    result = service.preview(Channel.SMS, Kind.GENERAL, "en", body=body, smart_encoding=True)
    assert result["body"] == "Maple Street Clinic: it's here. STOP"
    assert result["encoding"] == "GSM-7"


def test_preview_of_an_email_renders_subject_text_and_escaped_html():
    result = service.preview(
        Channel.EMAIL, Kind.GENERAL, "en", subject="Hi #PATIENTFIRSTNAME#", body="#SITENAME#",
        html_body="<p>#SITENAME#</p>", site={"name": "A & B Clinic"},
    )  # fmt: skip
    assert (result["subject"], result["body"]) == ("Hi Alexandra", "A & B Clinic")
    assert result["html"] == "<p>A &amp; B Clinic</p>"


def test_preview_of_a_call_is_speakable():
    result = service.preview(Channel.CALL, Kind.GENERAL, "en", body="Call #SITEPHONE#.")
    assert result["body"] == "Call five five five, zero one zero, zero one two three."


def test_preview_reports_missing_values_as_warnings():
    result = service.preview(Channel.SMS, Kind.GENERAL, "en", body="#SITENAME#. STOP",
                             values={"SITENAME": ""})  # fmt: skip
    assert result["body"] == "your care team. STOP"
    assert any("#SITENAME#" in w for w in result["warnings"])
