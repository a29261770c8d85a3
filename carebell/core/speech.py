"""Call scripts as speakable text: what a text-to-speech voice should say.

A voice reads "3/12 2:30 PM (555) 010-0123" badly: a date becomes a fraction and a
phone number a sum of millions. carebell therefore writes dates, times, phone numbers
and codes out in words for the template's language (English and Spanish), and
cleans the rest of the script of what cannot be heard (links, symbols).
"""

from __future__ import annotations

import re
from datetime import date, time

LANGUAGES = ("en", "es")

_EN_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
)  # fmt: skip
_EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty"}
_EN_ORDINAL_ONES = (
    "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
    "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
    "sixteenth", "seventeenth", "eighteenth", "nineteenth",
)  # fmt: skip
_EN_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}

# Spanish writes 16–29 as one word (dieciséis, veintiuno); é and ú are fine for a
# voice, which is why speech may use accents that SMS avoids.
_ES_ONES = (
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
    "diez", "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete",
    "dieciocho", "diecinueve", "veinte", "veintiuno", "veintidós", "veintitrés",
    "veinticuatro", "veinticinco", "veintiséis", "veintisiete", "veintiocho",
    "veintinueve",
)  # fmt: skip
_ES_TENS = {30: "treinta", 40: "cuarenta", 50: "cincuenta"}

EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
ES_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
ES_MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip

_DIGITS = {"en": _EN_ONES[:10], "es": _ES_ONES[:10]}


def language_of(code: str | None) -> str:
    """The supported language for a code such as "es-MX"; English otherwise."""
    base = (code or "en").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else "en"


def number_words(number: int, language: str = "en") -> str:
    """0–99 in words ("forty-five", "cuarenta y cinco"); digits beyond that."""
    if not 0 <= number < 100:
        return " ".join(_DIGITS[language_of(language)][int(d)] for d in str(abs(number)))
    if language_of(language) == "es":
        if number < 30:
            return _ES_ONES[number]
        tens, ones = divmod(number, 10)
        return _ES_TENS[tens * 10] + (f" y {_ES_ONES[ones]}" if ones else "")
    if number < 20:
        return _EN_ONES[number]
    tens, ones = divmod(number, 10)
    return _EN_TENS[tens * 10] + (f"-{_EN_ONES[ones]}" if ones else "")


def _en_ordinal(day: int) -> str:
    if day < 20:
        return _EN_ORDINAL_ONES[day]
    tens, ones = divmod(day, 10)
    if not ones:
        return _EN_ORDINAL_TENS[day]
    return f"{_EN_TENS[tens * 10]}-{_EN_ORDINAL_ONES[ones]}"


def say_date(day: date, language: str = "en") -> str:
    """A date as it is spoken: "Tuesday, March seventeenth" or "martes diecisiete
    de marzo" ("primero" for the first day, as Spanish speakers say it)."""
    weekday, month = day.weekday(), day.month - 1
    if language_of(language) == "es":
        number = "primero" if day.day == 1 else number_words(day.day, "es")
        return f"{ES_DAYS[weekday]} {number} de {ES_MONTHS[month]}"
    return f"{EN_DAYS[weekday]}, {EN_MONTHS[month]} {_en_ordinal(day.day)}"


def say_time(moment: time, language: str = "en") -> str:
    """A clock time as it is spoken: "two thirty in the afternoon", "las dos y
    media de la tarde", "noon", "las doce del mediodía"."""
    if language_of(language) == "es":
        return _say_time_es(moment.hour, moment.minute)
    return _say_time_en(moment.hour, moment.minute)


def _say_time_en(hour: int, minute: int) -> str:
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    clock = number_words(hour % 12 or 12)
    if minute == 0:
        clock += " o'clock"
    elif minute < 10:
        clock += f" oh {number_words(minute)}"
    else:
        clock += f" {number_words(minute)}"
    return f"{clock} {_en_part_of_day(hour)}"


def _en_part_of_day(hour: int) -> str:
    if hour < 12:
        return "in the morning"
    if hour < 17:
        return "in the afternoon"
    return "in the evening" if hour < 21 else "at night"


def _say_time_es(hour: int, minute: int) -> str:
    twelve = hour % 12 or 12
    article = "la" if twelve == 1 else "las"
    clock = f"{article} {'una' if twelve == 1 else number_words(twelve, 'es')}"
    if minute:
        words = {15: "cuarto", 30: "media"}.get(minute) or number_words(minute, "es")
        clock += f" y {words}"
    if hour == 12:
        part = "del mediodía"
    elif hour == 0:
        part = "de la noche"
    else:
        part = "de la mañana" if hour < 12 else "de la tarde" if hour < 20 else "de la noche"
    return f"{clock} {part}"


def say_digits(digits: str, language: str = "en", group: int = 0) -> str:
    """Each digit as a word, so a voice never reads "123456" as a number; with
    `group`, a comma (a pause) after every `group` digits."""
    words = _DIGITS[language_of(language)]
    spoken = [words[int(d)] for d in digits if d.isdigit()]
    if group:
        chunks = [" ".join(spoken[i : i + group]) for i in range(0, len(spoken), group)]
        return ", ".join(chunks)
    return ", ".join(spoken)


def say_phone(number: str, language: str = "en") -> str:
    """A phone number digit by digit, paused in its usual groups: a North American
    number as 3-3-4 without the country code, others in threes."""
    digits = "".join(d for d in number if d.isdigit())
    if number.startswith("+1") and len(digits) == 11:
        digits = digits[1:]
    if len(digits) == 10:
        parts = (digits[:3], digits[3:6], digits[6:])
        return ", ".join(say_digits(p, language, group=len(p)) for p in parts)
    return say_digits(digits, language, group=3)


_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)")
_SPACE = re.compile(r"\s+")
_SIGNS = {"en": {"&": " and ", "%": " percent "}, "es": {"&": " y ", "%": " por ciento "}}
_ABBREVIATIONS = {
    "en": {"Dr.": "Doctor", "Rx": "prescription", "appt": "appointment"},
    "es": {"Dr.": "Doctor", "Dra.": "Doctora", "Rx": "receta"},
}


def speakable(script: str, language: str = "en") -> str:
    """`script` ready for a voice: links removed (a link cannot be heard), phone
    numbers in the text read digit by digit, symbols in words, and line breaks and
    repeated spaces folded into single spaces."""
    language = language_of(language)
    text = _URL.sub("", script)
    text = _PHONE.sub(lambda m: say_phone(m.group(), language), text)
    for sign, words in _SIGNS[language].items():
        text = text.replace(sign, words)
    for short, words in _ABBREVIATIONS[language].items():
        text = re.sub(rf"(?<!\w){re.escape(short)}(?!\w)", words, text)
    return _SPACE.sub(" ", text).strip()
