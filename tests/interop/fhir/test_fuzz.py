"""Hypothesis against the JSON → resource layer (no database): whatever arrives, the
parser returns plain data or a FhirError with a 4xx status — never another exception
(which the view would answer with a 500). 10,000 inputs to the parser, 1,000 more to
the transaction and search-value parsers."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebell.interop.fhir import bundles, parsing
from carebell.interop.fhir.outcomes import FhirError
from carebell.interop.fhir.search import parse_date, parse_token
from tests.interop.fhir.conftest import VECTORS

# The examples without their narrative: its XHTML costs most of a validation and
# carebell reads nothing from it (the whole examples are taken in test_vectors).
EXAMPLES = [
    {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "text"}
    for path in sorted(VECTORS.glob("*.json"))
    if json.loads(path.read_text(encoding="utf-8"))["resourceType"] in parsing.WRITABLE
]
FIELDS = sorted({key for example in EXAMPLES for key in example} | {"start", "end", "patient"})


def fast(examples: int):
    """No deadline (a shared CI machine), no example database in the tree."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=list(HealthCheck), database=None)  # fmt: skip


ODD = [
    "",
    "2026-12-01",
    "2026-12-01T10:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "Patient/1",
    "urn:uuid:1",
    "booked",
    "mobile",
    "phone",
    "email",
    "d",
    "x/y/z",
    "\x00",
    "\ud7ff",
]
KEYS = [*FIELDS, "value", "system", "reference", "code", "coding", "use", "given", "family"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(ODD),
)  # fmt: skip
# Shallow on purpose: each input stays cheap to draw, so the 10,000 run in seconds.
json_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), scalars | st.lists(scalars, max_size=2), max_size=3),
)


def outcome_of(data) -> None:
    """Parse; a refusal must be a FhirError with a 4xx status."""
    try:
        parsing.read(data)
    except FhirError as error:
        assert 400 <= error.status < 500


@fast(3000)
@given(st.binary(max_size=200))
def test_any_bytes_are_parsed_or_refused(body):
    outcome_of(body)


@fast(2000)
@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused(body):
    outcome_of(body)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated_examples(draw):
    example = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(example))[1:]
        path = draw(st.sampled_from(paths))
        if path and path[-1] == "resourceType" and draw(st.booleans()):
            continue  # keep the type most of the time: the mapping is what is fuzzed
        example = _replace(example, path, draw(json_values))
    return example


@fast(3000)
@given(mutated_examples())
def test_mutated_examples_are_mapped_or_refused(resource):
    outcome_of(resource)


@fast(2000)
@given(
    st.sampled_from(parsing.WRITABLE),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
)
def test_resources_of_random_fields_are_mapped_or_refused(resource_type, fields):
    outcome_of({**fields, "resourceType": resource_type})


@fast(500)
@given(json_values)
def test_any_transaction_shell_is_ordered_or_refused(entries):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    try:
        found = bundles._entries(bundle)
        bundles._type_references(found)
        bundles._after_their_references(list(range(len(found))), found)
    except FhirError as error:
        assert 400 <= error.status < 500


@fast(500)
@given(st.text(max_size=40))
def test_any_search_value_is_a_range_a_token_or_a_400(text):
    for parse in (parse_date, parse_token):
        try:
            parse(text)
        except FhirError as error:
            assert error.status == 400


def test_a_nesting_bomb_is_refused_before_validation():
    deep = {"resourceType": "Patient", "extension": []}
    node = deep["extension"]
    for _ in range(5000):
        node.append({"extension": []})
        node = node[0]["extension"]
    with pytest.raises(FhirError) as raised:
        parsing.read(deep)
    assert raised.value.status == 400
    with pytest.raises(FhirError):
        parsing.read(b"[" * 100_000)


@pytest.mark.django_db
@fast(150)
@given(resource=mutated_examples())
def test_over_http_a_mutated_example_is_written_or_refused_never_a_500(fhir_once, resource):
    """A few through the whole door, database included: the answer is a resource or
    an OperationOutcome, and a refusal leaves no record behind."""
    from carebell.interop.fhir.models import FhirRecord

    fhir, patient_id = fhir_once
    participants = resource.get("participant")  # a mutation may make it anything
    for participant in participants if isinstance(participants, list) else []:
        if isinstance(participant, dict) and isinstance(participant.get("actor"), dict):
            participant["actor"]["reference"] = f"Patient/{patient_id}"
    before = FhirRecord.objects.count()
    kind = resource.get("resourceType")
    response = fhir.post(kind if isinstance(kind, str) and kind.isalpha() else "Patient", resource)
    assert response.status_code < 500
    assert response["Content-Type"].startswith("application/fhir+json")
    if response.status_code >= 400:
        assert response.json_body["resourceType"] == "OperationOutcome"
        assert FhirRecord.objects.count() == before


@pytest.fixture
def fhir_once(fhir):
    from tests.interop.fhir.conftest import patient_in

    return fhir, patient_in(fhir, mrn="FUZZ-0")["id"]
