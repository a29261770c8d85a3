from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebell.core import placeholders as ph
from carebell.core.placeholders import RenderContext, Severity
from carebell.core.vocab import Channel, Kind

NEW_YORK = ZoneInfo("America/New_York")
# 18:30 UTC on Saturday 21 March 2026 is 2:30 PM in New York (daylight time).
APPOINTMENT = datetime(2026, 3, 21, 18, 30, tzinfo=UTC)


def ctx(language="en", channel=Channel.SMS, **kwargs):
    return RenderContext(language=language, time_zone=NEW_YORK, channel=channel, **kwargs)


def test_every_kind_has_an_allowlist_of_known_placeholders():
    assert set(ph.ALLOWED) == set(Kind)
    for names in ph.ALLOWED.values():
        assert names <= set(ph.CATALOGUE)


def test_a_keyword_reply_names_no_patient():
    assert ph.allowed_for(Kind.KEYWORD_REPLY) == ("SITENAME", "SITEPHONE")


def test_a_valid_template_has_no_problems():
    assert ph.find_problems("#SITENAME#: see you #APPTDATE#", Kind.APPT_REMINDER) == []


def test_a_disallowed_placeholder_is_refused_with_its_place_and_the_allowed_list():
    [problem] = ph.find_problems("Hi #PATIENTNAME#,\nyour #DRUGNAME#", Kind.APPT_REMINDER)
    assert problem.code == "disallowed_placeholder"
    assert problem.token == "#DRUGNAME#"
    assert (problem.position, problem.line, problem.column) == (23, 2, 6)
    assert "APPTDATE" in problem.allowed
    assert "line 2, column 6" in problem.message
    assert "#APPTDATE#" in problem.message
    assert problem.is_error


def test_an_unknown_placeholder_is_refused():
    [problem] = ph.find_problems("Hello #NICKNAME#", Kind.BIRTHDAY)
    assert problem.code == "unknown_placeholder"
    assert problem.token == "#NICKNAME#"


def test_a_lower_case_placeholder_is_refused_with_the_right_spelling():
    [problem] = ph.find_problems("Hello #patientName#", Kind.BIRTHDAY)
    assert problem.code == "malformed_placeholder"
    assert "#PATIENTNAME#" in problem.message


def test_a_placeholder_missing_its_closing_hash_is_refused():
    [problem] = ph.find_problems("Call #SITEPHONE today", Kind.BIRTHDAY)
    assert problem.code == "unclosed_placeholder"
    assert problem.token == "#SITEPHONE"


@pytest.mark.parametrize("text", ["Rx #12345 is ready", "Press # to repeat", "Room # 4", "#1 pick"])
def test_hashes_that_are_not_placeholders_are_plain_text(text):
    assert ph.find_problems(text, Kind.RX_READY) == []


def test_problems_name_the_field_they_are_in():
    [problem] = ph.find_problems("#CODE#", Kind.BIRTHDAY, field_name="subject")
    assert problem.field == "subject"
    assert problem.as_dict()["field"] == "subject"


def test_rendering_replaces_each_placeholder_once():
    rendered = ph.render("Hi #PATIENTFIRSTNAME#, #SITENAME#", {
        "PATIENTFIRSTNAME": "Ana", "SITENAME": "Maple Clinic"}, ctx())  # fmt: skip
    assert rendered.text == "Hi Ana, Maple Clinic"
    assert rendered.warnings == ()


def test_a_value_that_looks_like_a_placeholder_is_never_expanded_again():
    rendered = ph.render("#PATIENTNAME# #CODE#", {"PATIENTNAME": "#CODE#", "CODE": "123456"}, ctx())
    assert rendered.text == "#CODE# 123456"


@given(st.text(), st.text())
def test_any_value_appears_verbatim_apart_from_folded_whitespace(name, site):
    rendered = ph.render("[#PATIENTNAME#|#SITENAME#]", {"PATIENTNAME": name, "SITENAME": site},
                         ctx())  # fmt: skip
    expected_name = " ".join(name.split()) if not name.isprintable() else name
    if expected_name:
        assert rendered.text.startswith(f"[{expected_name}|")


def test_there_is_no_attribute_access_or_expression():
    rendered = ph.render("#PATIENTNAME.__class__# {0} {{x}} $x", {"PATIENTNAME": "Ana"}, ctx())
    assert rendered.text == "#PATIENTNAME.__class__# {0} {{x}} $x"


def test_a_missing_value_becomes_the_fallback_and_a_warning():
    rendered = ph.render("Ask #PROVIDER#", {}, ctx("es"))
    assert rendered.text == "Ask su proveedor"
    [warning] = rendered.warnings
    assert (warning.code, warning.token, warning.severity) == (
        "missing_value", "#PROVIDER#", Severity.WARNING)  # fmt: skip


def test_an_unusable_value_becomes_the_fallback_and_a_warning():
    rendered = ph.render("on #APPTDATE#", {"APPTDATE": 3.5}, ctx())
    assert rendered.text == "on the scheduled day"
    assert rendered.warnings[0].code == "unusable_value"


def test_a_name_unknown_at_send_time_renders_as_nothing_without_raising():
    rendered = ph.render("x#NOSUCHTHING#y", {"NOSUCHTHING": "secret"}, ctx())
    assert rendered.text == "xy"
    assert rendered.warnings[0].code == "unknown_placeholder"


@pytest.mark.parametrize(
    ("language", "channel", "expected"),
    [
        ("en", Channel.SMS, "Sat, Mar 21 at 2:30 PM"),
        ("en", Channel.EMAIL, "Saturday, March 21 at 2:30 PM"),
        ("es", Channel.SMS, "sabado 21 de marzo at 2:30 pm"),
        ("es", Channel.EMAIL, "sábado 21 de marzo at 2:30 pm"),
        ("en", Channel.CALL, "Saturday, March twenty-first at two thirty in the afternoon"),
        ("es", Channel.CALL, "sábado veintiuno de marzo at las dos y media de la tarde"),
    ],
)
def test_dates_and_times_are_written_for_the_language_in_the_sites_time_zone(
    language, channel, expected
):
    values = {"APPTDATE": APPOINTMENT, "APPTTIME": APPOINTMENT}
    assert ph.render("#APPTDATE# at #APPTTIME#", values, ctx(language, channel)).text == expected


# Siblings on Saturday 21 March 2026 at 09:00 and 10:30 in New York (EDT).
SIBLINGS = (
    ("Ana", datetime(2026, 3, 21, 13, 0, tzinfo=UTC)),
    ("Ben", datetime(2026, 3, 21, 14, 30, tzinfo=UTC)),
)


@pytest.mark.parametrize(
    ("language", "channel", "expected"),
    [
        ("en", Channel.SMS, "Ana 9:00 AM, Ben 10:30 AM"),
        ("en", Channel.EMAIL, "Ana at 9:00 AM and Ben at 10:30 AM"),
        ("en", Channel.CALL, "Ana at nine o'clock in the morning and Ben at ten thirty in "
         "the morning"),
        ("es", Channel.SMS, "Ana 9:00 am, Ben 10:30 am"),
        ("es", Channel.EMAIL, "Ana a las 9:00 am y Ben a las 10:30 am"),
        ("es", Channel.CALL, "Ana a las nueve de la mañana y Ben a las diez y media de la "
         "mañana"),
    ],
)  # fmt: skip
def test_the_appointment_list_names_each_child_with_their_own_local_time(
    language, channel, expected
):
    rendered = ph.render("#APPTLIST#", {"APPTLIST": SIBLINGS}, ctx(language, channel))
    assert rendered == (expected, ())


def test_the_appointment_list_joins_three_children_and_reads_for_one():
    three = (*SIBLINGS, ("Cy", datetime(2026, 3, 21, 17, 0, tzinfo=UTC)))  # 1:00 PM
    email = ctx(channel=Channel.EMAIL)
    assert ph.render("#APPTLIST#", {"APPTLIST": three}, email).text == (
        "Ana at 9:00 AM, Ben at 10:30 AM and Cy at 1:00 PM"
    )
    assert ph.render("#APPTLIST#", {"APPTLIST": three[2:]}, ctx("es", Channel.EMAIL)).text == (
        "Cy a la 1:00 pm"
    )
    assert ph.render("#APPTLIST#", {"APPTLIST": SIBLINGS[:1]}, email).text == "Ana at 9:00 AM"


def test_the_appointment_list_in_an_sms_stays_short_and_in_gsm7():
    from carebell.core.segments import is_gsm7

    for language in ("en", "es"):
        text = ph.render("#APPTLIST#", {"APPTLIST": SIBLINGS}, ctx(language)).text
        assert is_gsm7(text) and len(text) <= 26, text


def test_names_in_the_appointment_list_are_escaped_in_html():
    values = {"APPTLIST": (("<b>Ana</b>", SIBLINGS[0][1]),)}
    text = ph.render("#APPTLIST#", values, ctx(channel=Channel.EMAIL, html=True)).text
    assert text == "&lt;b&gt;Ana&lt;/b&gt; at 9:00 AM"


@pytest.mark.parametrize("value", [(), (("Ana",),), (("Ana", "nine"),), ((None, APPOINTMENT),)])
def test_an_unusable_appointment_list_becomes_the_fallback_and_a_warning(value):
    rendered = ph.render("#APPTLIST#", {"APPTLIST": value}, ctx())
    assert rendered.text == "your appointments"
    assert [w.code for w in rendered.warnings] in (["missing_value"], ["unusable_value"])


def test_the_local_date_is_used_when_utc_is_already_tomorrow():
    late = datetime(2026, 3, 18, 2, 0, tzinfo=UTC)  # 10 PM on the 17th in New York
    assert ph.render("#APPTDATE#", {"APPTDATE": late}, ctx()).text == "Tue, Mar 17"


def test_the_year_is_written_only_when_it_is_not_this_year():
    values = {"DUEDATE": date(2027, 1, 5)}
    assert ph.render("#DUEDATE#", values, ctx(today=date(2026, 12, 20))).text == (
        "Tue, Jan 5, 2027"
    )
    assert ph.render(
        "#DUEDATE#", values, ctx("es", Channel.EMAIL, today=date(2027, 1, 1))
    ).text == ("martes 5 de enero")


def test_sms_dates_in_spanish_stay_in_gsm7():
    from carebell.core.segments import is_gsm7

    for day in range(16, 23):
        text = ph.render("#APPTDATE#", {"APPTDATE": date(2026, 3, day)}, ctx("es")).text
        assert is_gsm7(text), text


def test_phone_numbers_are_written_for_people_and_spoken_on_calls():
    values = {"SITEPHONE": "+15550100123"}
    assert ph.render("#SITEPHONE#", values, ctx()).text == "(555) 010-0123"
    assert ph.render("#SITEPHONE#", values, ctx(channel=Channel.CALL)).text.startswith("five")
    assert ph.render("#SITEPHONE#", {"SITEPHONE": "+442071234567"}, ctx()).text == "+442071234567"


def test_values_are_escaped_in_html():
    rendered = ph.render("<b>#PATIENTNAME#</b>", {"PATIENTNAME": "<script>"}, ctx(html=True))
    assert rendered.text == "<b>&lt;script&gt;</b>"


def test_a_newline_in_a_value_cannot_reshape_the_message():
    assert ph.render("#SITENAME#!", {"SITENAME": "Maple\nClinic\t"}, ctx()).text == (
        "Maple Clinic!"
    )


def test_links_say_nothing_on_a_call():
    rendered = ph.render(
        "Go to #REVIEWLINK#", {"REVIEWLINK": "https://x"}, ctx(channel=Channel.CALL)
    )
    assert rendered.text == "Go to "


def test_a_code_is_spoken_digit_by_digit():
    rendered = ph.render("#CODE#", {"CODE": "402913"}, ctx(channel=Channel.CALL))
    assert rendered.text == "four, zero, two, nine, one, three"


def test_compiling_is_cached_and_lists_the_names():
    first = ph.compile_template("#SITENAME# #CODE#")
    assert ph.compile_template("#SITENAME# #CODE#") is first
    assert first.names == ("SITENAME", "CODE")
    assert ph.placeholders_in("#A# x #SITENAME#") == ["A", "SITENAME"]
