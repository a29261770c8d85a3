import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebell.core import segments
from carebell.core.segments import Encoding

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "sms"
_SEGMENT_FILE = json.loads((VECTORS / "segment_vectors.json").read_text(encoding="utf-8"))
ALL_VECTORS = _SEGMENT_FILE["vectors"]
# National single-shift tables are informational in the vectors: carebell sends such
# text as UCS-2, like Twilio and the carriers do (see segments' module docstring).
SHIFT_TABLE = [v for v in ALL_VECTORS if v["encoding"] == "GSM-7+national-single-shift"]
PLAIN = [v for v in ALL_VECTORS if v not in SHIFT_TABLE]
ALPHABET = json.loads((VECTORS / "gsm0338_alphabet.json").read_text(encoding="utf-8"))
TWILIO_SMART = json.loads((VECTORS / "twilio_smart_encoding_map.json").read_text(encoding="utf-8"))[
    "map"
]


def _characters(result, unit):
    return {"grapheme": result.characters, "code_unit": result.units}.get(unit, result.code_points)


def test_the_vector_file_holds_every_case_it_documents():
    assert len(ALL_VECTORS) == 63
    assert len(SHIFT_TABLE) == 3


@pytest.mark.parametrize("vector", PLAIN, ids=[v["id"] for v in PLAIN])
def test_it_agrees_with_every_plain_vector(vector):
    result = segments.count(vector["text"])
    assert result.encoding == vector["encoding"]
    assert result.segments == vector["segments"]
    assert _characters(result, vector["characters_unit"]) == vector["characters"]
    assert result.units == vector["derived_code_units"]
    assert result.code_points == len(vector["text"])


@pytest.mark.parametrize(
    "vector", [v for v in PLAIN if "total_size_bits" in v], ids=lambda v: v["id"]
)
def test_it_agrees_with_twilio_on_message_and_header_bits(vector):
    result = segments.count(vector["text"])
    assert result.message_bits == vector["message_size_bits"]
    assert result.total_bits == vector["total_size_bits"]


@pytest.mark.parametrize("vector", [v for v in PLAIN if "remaining" in v], ids=lambda v: v["id"])
def test_it_agrees_with_sms_counter_on_capacity_and_what_remains(vector):
    result = segments.count(vector["text"])
    assert result.per_segment == vector["per_message"]
    assert result.remaining == vector["remaining"]


@pytest.mark.parametrize("vector", SHIFT_TABLE, ids=[v["id"] for v in SHIFT_TABLE])
def test_it_sends_national_shift_table_text_as_one_ucs2_segment(vector):
    result = segments.count(vector["text"])
    assert result.encoding is Encoding.UCS2
    assert result.segments == vector["segments"] == 1
    assert result.units == vector["derived_code_units"]


def test_its_alphabet_is_exactly_gsm_03_38():
    basic = "".join(e["char"] for e in ALPHABET["basic"] if e["gsm"] != "0x1B")
    extension = "".join(e["char"] for e in ALPHABET["extension"])
    assert basic == segments.GSM7_BASIC
    assert sorted(segments.GSM7_EXTENSION) == sorted(extension)


def test_the_codec_test_string_is_gsm7_with_each_extension_character_costing_two():
    text = ALPHABET["codec_test_strings"]["unicode"]
    result = segments.count(text)
    assert result.encoding is Encoding.GSM7
    assert result.units == len(ALPHABET["codec_test_strings"]["gsm_hex"]) // 2


def test_an_escape_pair_never_straddles_two_segments():
    text = "a" * 152 + "€" + "b" * 10
    parts = segments.split(text)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("€")
    assert segments.count(text).remaining == 153 - 12


def test_a_surrogate_pair_never_straddles_two_segments():
    text = "a" * 66 + "😎" + "b" * 5
    assert segments.split(text) == ["a" * 66, "😎bbbbb"]


def test_a_single_segment_text_has_no_split_points():
    assert segments.split_points("hello") == []
    assert segments.split("hello") == ["hello"]


def test_the_empty_text_is_one_empty_gsm7_segment():
    result = segments.count("")
    assert (result.encoding, result.segments, result.units, result.remaining) == (
        Encoding.GSM7,
        1,
        0,
        160,
    )


@given(st.text(max_size=400))
def test_segments_always_rejoin_into_the_text_and_respect_capacity(text):
    result = segments.count(text)
    parts = segments.split(text)
    assert "".join(parts) == text
    assert len(parts) == result.segments
    units = segments.split_units(text, result.encoding)
    assert sum(units) == result.units
    if len(parts) > 1:
        assert max(units) <= result.per_segment


def test_it_names_the_characters_that_force_ucs2_with_a_replacement():
    culprits = segments.ucs2_culprits("Don\u2019t be late,\u00a0see you")
    assert [(c.char, c.replacement) for c in culprits] == [("\u2019", "'"), ("\u00a0", " ")]
    assert culprits[0].position == 3
    assert "non-breaking space" in culprits[1].message


def test_it_has_no_replacement_to_suggest_for_an_emoji():
    [culprit] = segments.ucs2_culprits("See you 😀")
    assert culprit.replacement is None
    assert "no GSM-7 equivalent" in culprit.message


def test_smart_encoding_turns_typographic_text_into_gsm7():
    text = "\u201cPlease\u201d \u2014 it\u2019s ready\u2026\u00a0Call us"
    assert segments.smart_encode(text) == '"Please" - it\'s ready... Call us'
    assert segments.is_gsm7(segments.smart_encode(text))


def test_smart_encoding_never_changes_spanish_words():
    assert segments.smart_encode("Su cita está confirmada") == "Su cita está confirmada"


def test_every_replacement_is_gsm7():
    for char, replacement in segments.REPLACEMENTS.items():
        assert not segments.is_gsm7(char), char
        assert segments.is_gsm7(replacement), char


# Where carebell's table and Twilio's disagree, carebell's choice is deliberate: one
# space for a non-breaking or typographic space or a tab (Twilio's table gives
# several), and an apostrophe for single guillemets and the low single quote (Twilio
# swaps guillemets to > < and reads the low quote as a comma).
DELIBERATE_DIFFERENCES = {"\u00a0", "\t", "\u2039", "\u203a", "\u201a"} | {
    c for c in segments._SPACES if TWILIO_SMART.get(c, " ") != " "
}


def test_it_agrees_with_twilio_smart_encoding_wherever_both_replace_a_character():
    shared = set(segments.REPLACEMENTS) & set(TWILIO_SMART) - DELIBERATE_DIFFERENCES
    assert len(shared) >= 35
    for char in shared:
        assert segments.REPLACEMENTS[char] == TWILIO_SMART[char], repr(char)


@pytest.mark.parametrize("char", ["\u2018", "\u2019", "\u201c", "\u201d", "\u2013", "\u2014",
                                  "\u2026", "\u00a0", "\u200b", "\ufeff", "\u2022"])  # fmt: skip
def test_it_covers_the_look_alikes_that_word_processors_insert(char):
    assert char in TWILIO_SMART
    assert char in segments.REPLACEMENTS


def test_every_character_that_can_join_a_cluster_takes_the_careful_path():
    import sys

    missed = [
        hex(cp)
        for cp in range(sys.maxunicode + 1)
        if not 0xD800 <= cp <= 0xDFFF
        and (segments._extends(chr(cp)) or segments._is_regional_indicator(chr(cp)))
        and not segments._MAY_CLUSTER.match(chr(cp))
    ]
    assert missed == []


def test_count_segments_gives_only_the_number():
    assert segments.count_segments("x" * 161) == 2
