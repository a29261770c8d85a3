from datetime import date, time

import pytest

from carebell.core import speech


@pytest.mark.parametrize(
    ("day", "english", "spanish"),
    [
        (date(2026, 3, 1), "Sunday, March first", "domingo primero de marzo"),
        (date(2026, 3, 17), "Tuesday, March seventeenth", "martes diecisiete de marzo"),
        (date(2026, 3, 21), "Saturday, March twenty-first", "sábado veintiuno de marzo"),
        (date(2026, 3, 31), "Tuesday, March thirty-first", "martes treinta y uno de marzo"),
    ],
)
def test_it_reads_dates_as_people_say_them(day, english, spanish):
    assert speech.say_date(day, "en") == english
    assert speech.say_date(day, "es") == spanish


@pytest.mark.parametrize(
    ("moment", "english", "spanish"),
    [
        (time(9, 0), "nine o'clock in the morning", "las nueve de la mañana"),
        (time(9, 5), "nine oh five in the morning", "las nueve y cinco de la mañana"),
        (time(12, 0), "noon", "las doce del mediodía"),
        (time(13, 15), "one fifteen in the afternoon", "la una y cuarto de la tarde"),
        (time(14, 30), "two thirty in the afternoon", "las dos y media de la tarde"),
        (time(18, 45), "six forty-five in the evening", "las seis y cuarenta y cinco de la tarde"),
        (time(0, 0), "midnight", "las doce de la noche"),
    ],
)
def test_it_reads_times_naturally(moment, english, spanish):
    assert speech.say_time(moment, "en") == english
    assert speech.say_time(moment, "es") == spanish


def test_it_reads_a_north_american_number_digit_by_digit_in_groups():
    assert speech.say_phone("+15550100123", "en") == (
        "five five five, zero one zero, zero one two three"
    )
    assert speech.say_phone("(555) 010-0123", "es") == (
        "cinco cinco cinco, cero uno cero, cero uno dos tres"
    )


def test_it_reads_other_numbers_in_threes():
    assert speech.say_phone("+44207", "en") == "four four two, zero seven"


def test_it_reads_a_code_one_digit_at_a_time_with_pauses():
    assert speech.say_digits("402913", "en") == "four, zero, two, nine, one, three"


def test_a_script_loses_its_links_and_reads_phone_numbers_and_symbols():
    script = "Dr. Lee & team: call (555) 010-0123 or see https://example.org/x now.\n\nBye"
    assert speech.speakable(script, "en") == (
        "Doctor Lee and team: call five five five, zero one zero, zero one two three "
        "or see now. Bye"
    )


def test_a_spanish_script_says_symbols_in_spanish():
    assert speech.speakable("Su Rx & 50%", "es") == "Su receta y 50 por ciento"


@pytest.mark.parametrize(("code", "language"), [("es-MX", "es"), ("EN_us", "en"), ("fr", "en"),
                                                (None, "en")])  # fmt: skip
def test_it_speaks_english_when_the_language_is_not_supported(code, language):
    assert speech.language_of(code) == language


def test_numbers_beyond_ninety_nine_are_read_digit_by_digit():
    assert speech.number_words(45, "en") == "forty-five"
    assert speech.number_words(45, "es") == "cuarenta y cinco"
    assert speech.number_words(120, "en") == "one two zero"
