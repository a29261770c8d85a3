"""SMS encoding and segments: what a text costs and where a phone would split it.

An SMS is sent in GSM-7 when every character is in the GSM 03.38 default alphabet
or its extension table (3GPP TS 23.038); one character outside it switches the whole
message to UCS-2 (UTF-16), which shrinks a segment from 160 to 70 characters. A
single message holds 1120 bits: 160 septets or 70 UTF-16 units. Once concatenated,
each part loses 6 octets to the user-data header and holds 153 septets or 67 units.

An extension character travels as ESC + code (2 septets) and an astral character
(most emoji) as a surrogate pair (2 units); neither pair may be cut between two
parts, so a part may carry one unit less than its capacity.

National-language shift tables are not used: carriers and Twilio send such text as
UCS-2, and so do we (see the `php-shift-*` vectors).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# The GSM 03.38 default alphabet, in code order, without 0x1B (ESC, not a character).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The default extension table: each costs ESC + code, 2 septets.
GSM7_EXTENSION = "\f^{}\\[~]|€"

SINGLE_SEPTETS = 160
PART_SEPTETS = 153
SINGLE_UNITS = 70
PART_UNITS = 67
_UDH_BITS = 48

_NOT_GSM7 = re.compile("[^" + re.escape(GSM7_BASIC + GSM7_EXTENSION) + "]")
_NOT_BASIC = re.compile("[^" + re.escape(GSM7_BASIC) + "]")
_EXTENSION = re.compile("[" + re.escape(GSM7_EXTENSION) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class SmsCount(NamedTuple):
    """What a text costs as an SMS.

    `characters` is what a person counts (grapheme clusters, as Twilio shows them);
    `units` is what the network counts (GSM-7 septets or UTF-16 code units);
    `remaining` is how many units still fit in the last segment.
    """

    # A NamedTuple, not a frozen dataclass: it is built for every message sent and
    # costs a fifth as much to create.
    encoding: Encoding
    characters: int
    code_points: int
    units: int
    segments: int
    per_segment: int
    remaining: int

    @property
    def message_bits(self) -> int:
        """Payload size in bits, without the concatenation headers."""
        return self.units * (7 if self.encoding is Encoding.GSM7 else 16)

    @property
    def total_bits(self) -> int:
        """Payload plus one 6-octet user-data header per part when concatenated."""
        headers = _UDH_BITS * self.segments if self.segments > 1 else 0
        return self.message_bits + headers


def is_gsm7(text: str) -> bool:
    """True when `text` can be sent in GSM-7 (default alphabet plus extension table)."""
    return _NOT_GSM7.search(text) is None


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character allows it, else UCS-2 for the whole message."""
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


_GSM7 = Encoding.GSM7
_UCS2 = Encoding.UCS2


def count(text: str) -> SmsCount:
    """Encoding, characters, units and segments of `text` as one SMS.

    The empty text is one (empty) GSM-7 segment. Fast for the common case: a text
    in the basic GSM-7 alphabet is counted with one regex scan and no Python loop.
    """
    length = len(text)
    if _NOT_BASIC.search(text) is None:
        # Basic alphabet only: one septet and one grapheme per character.
        if length <= SINGLE_SEPTETS:
            return SmsCount(_GSM7, length, length, length, 1, SINGLE_SEPTETS, 160 - length)
        return _count_parts(text, _GSM7, length, length)
    if is_gsm7(text):
        units = length + len(_EXTENSION.findall(text))
        if units <= SINGLE_SEPTETS:
            return SmsCount(_GSM7, length, length, units, 1, SINGLE_SEPTETS, 160 - units)
        return _count_parts(text, _GSM7, length, units)
    units = length + len(_ASTRAL.findall(text))
    graphemes = count_graphemes(text)
    if units <= SINGLE_UNITS:
        return SmsCount(_UCS2, graphemes, length, units, 1, SINGLE_UNITS, SINGLE_UNITS - units)
    return _count_parts(text, _UCS2, graphemes, units)


def _count_parts(text: str, encoding: Encoding, characters: int, units: int) -> SmsCount:
    parts = split_units(text, encoding)
    last = parts[-1]
    per_segment = PART_SEPTETS if encoding is Encoding.GSM7 else PART_UNITS
    return SmsCount(
        encoding, characters, len(text), units, len(parts), per_segment, per_segment - last
    )


def _cost(char: str, encoding: Encoding) -> int:
    if encoding is Encoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def split_points(text: str, encoding: Encoding | None = None) -> list[int]:
    """Indexes into `text` where each segment after the first begins.

    Empty for a single-segment text. A character whose pair (ESC + code, or a
    surrogate pair) would not fit in the current part starts the next one.
    """
    encoding = encoding or encoding_of(text)
    single, part = _capacities(encoding)
    pairs = _EXTENSION if encoding is Encoding.GSM7 else _ASTRAL
    if pairs.search(text) is None:
        # One unit per character: the parts are plain slices.
        return [] if len(text) <= single else list(range(part, len(text), part))
    if sum(_cost(c, encoding) for c in text) <= single:
        return []
    points, used = [], 0
    for index, char in enumerate(text):
        cost = _cost(char, encoding)
        if used + cost > part:
            points.append(index)
            used = 0
        used += cost
    return points


def split(text: str) -> list[str]:
    """The text of each segment, in order (one item for a single-segment text)."""
    bounds = [0, *split_points(text), len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def split_units(text: str, encoding: Encoding) -> list[int]:
    """Units carried by each segment, in order."""
    pairs = _EXTENSION if encoding is Encoding.GSM7 else _ASTRAL
    if pairs.search(text) is None:
        return [len(part) for part in split(text)]
    return [sum(_cost(c, encoding) for c in part) for part in split(text)]


def _capacities(encoding: Encoding) -> tuple[int, int]:
    if encoding is Encoding.GSM7:
        return SINGLE_SEPTETS, PART_SEPTETS
    return SINGLE_UNITS, PART_UNITS


# --- Grapheme clusters -------------------------------------------------------------
# A simplified UAX #29: enough for what people put in an SMS (accents, emoji with
# skin tones, ZWJ sequences, flags, keycaps). CR LF counts as two characters, as in
# Twilio's calculator, which is what the vectors assert.

_ZWJ = "\u200d"


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or char == _ZWJ
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


# Every character that can join a cluster (combining marks, joiners, variation
# selectors, regional indicators, skin tones, tags) lies in these ranges, so a text
# with none of them has one grapheme per code point (a test checks every code point).
_MAY_CLUSTER = re.compile(
    "[\u0300-\u036f\u0483-\u0dff\u0e00-\u109f\u1100-\u139f\u1700-\u1cff\u1dc0-\u1dff"
    "\u200c\u200d\u20d0-\u20ff\u2cef-\u2cf1\u2d7f\u2de0-\u2dff\u302a-\u302f\u3099\u309a"
    "\ua66f-\ua6ff\ua800-\uabff\ufb1e\ufe00-\ufe0f\ufe20-\ufe2f"
    "\U00010000-\U0001efff\U0001f1e6-\U0001f1ff\U0001f3fb-\U0001f3ff"
    "\U000e0000-\U000e0fff]"
)


def count_graphemes(text: str) -> int:
    """User-perceived characters in `text` (simplified extended grapheme clusters)."""
    if _MAY_CLUSTER.search(text) is None:
        return len(text)
    total, previous, open_flag = 0, "", False
    for char in text:
        if previous == _ZWJ or _extends(char):
            previous = char
            continue
        if _is_regional_indicator(char) and open_flag:
            open_flag, previous = False, char
            continue
        open_flag = _is_regional_indicator(char)
        total += 1
        previous = char
    return total


# --- Characters that silently force UCS-2 ------------------------------------------
# Word processors and phones put typographic look-alikes into text pasted into a
# template; each one doubles the cost of the whole message. carebell's own table of
# replacements (the `twilio_smart_encoding_map.json` vector is the reference the
# tests compare it with).

_QUOTES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u00b4": "'", "\u0060": "'", "\u02bc": "'", "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\uff02": '"', "\uff07": "'",
}  # fmt: skip
_DASHES = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\ufe63": "-", "\uff0d": "-", "\u2043": "-",
    "\u2022": "-",
}  # fmt: skip
_SPACES = {
    "\u00a0": " ", "\u2000": " ", "\u2001": " ", "\u2002": " ", "\u2003": " ",
    "\u2004": " ", "\u2005": " ", "\u2006": " ", "\u2007": " ", "\u2008": " ",
    "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u205f": " ", "\u3000": " ",
    "\u2028": " ", "\u2029": " ", "\t": " ",
}  # fmt: skip
_INVISIBLE = {"\u200b": "", "\u2060": "", "\ufeff": "", "\u00ad": ""}
_OTHER = {
    "\u2026": "...", "\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4",
    "\u2044": "/", "\u2215": "/", "\u00f7": "/", "\u2122": "TM", "\u00a9": "(c)",
    "\u00ae": "(R)", "\u2116": "No.", "\uff03": "#", "\uff1a": ":", "\uff01": "!",
    "\uff1f": "?", "\u203c": "!!",
}  # fmt: skip

#: Look-alike characters and the GSM-7 text to use instead.
REPLACEMENTS: dict[str, str] = {**_QUOTES, **_DASHES, **_SPACES, **_INVISIBLE, **_OTHER}
_REPLACE_TABLE = str.maketrans(REPLACEMENTS)
_REPLACEABLE = re.compile("[" + re.escape("".join(REPLACEMENTS)) + "]")

_NAMES = {"\u00a0": "non-breaking space", "\u200b": "zero-width space", "\t": "tab"}


@dataclass(frozen=True, slots=True)
class Ucs2Culprit:
    """A character that forces UCS-2, where it is, and what could replace it."""

    char: str
    position: int
    name: str
    replacement: str | None

    @property
    def message(self) -> str:
        hint = (
            f"; use {self.replacement!r} instead"
            if self.replacement is not None
            else "; no GSM-7 equivalent"
        )
        return f"{self.name} ({self.char!r}) at {self.position} forces UCS-2{hint}"


def ucs2_culprits(text: str) -> list[Ucs2Culprit]:
    """Each character of `text` that keeps it out of GSM-7, first occurrence only,
    with a suggested replacement when one exists (None for emoji, accents, …)."""
    found: dict[str, Ucs2Culprit] = {}
    for match in _NOT_GSM7.finditer(text):
        char = match.group()
        if char not in found:
            found[char] = Ucs2Culprit(char, match.start(), _char_name(char), REPLACEMENTS.get(char))
    return list(found.values())


def _char_name(char: str) -> str:
    return _NAMES.get(char) or unicodedata.name(char, f"U+{ord(char):04X}").lower()


def smart_encode(text: str) -> str:
    """`text` with each look-alike in `REPLACEMENTS` replaced by its GSM-7 form.

    Other characters are left alone, so a text with emoji or accents such as `á`
    stays UCS-2: smart encoding never changes what a word says.
    """
    if _REPLACEABLE.search(text) is None:
        return text
    return text.translate(_REPLACE_TABLE)


def count_segments(text: str) -> int:
    """Only the number of segments `text` takes (see `count`)."""
    return count(text).segments
