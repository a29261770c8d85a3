"""Loading patients' contacts, contact points and preferences as the rules core's facts."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

from carebell.core.channels import ContactFacts, ContactPointFacts
from carebell.core.vocab import Authority, Category, Channel, Preference

#: A contact's columns and the joins that bring them, for queries that start from
#: people_contact `c` (here, and the appointment planner's single query).
COLUMNS = """c.id, c.position, c.authority, c.end_date, c.time_zone, c.language, pr.value,
       m.id, m.value, m.is_valid, m.verified_at, m.opted_out_sms, m.opted_out_call,
       m.consent_sms, m.consent_call,
       h.id, h.value, h.is_valid, h.verified_at, h.opted_out_call, h.consent_call,
       e.id, e.value, e.is_valid, e.verified_at, e.opted_out_email"""
JOINS = """LEFT JOIN people_contactpreference pr ON pr.contact_id = c.id AND pr.category = %s
LEFT JOIN people_contactpoint m ON m.contact_id = c.id AND m.kind = 'mobile'
LEFT JOIN people_contactpoint h ON h.contact_id = c.id AND h.kind = 'home'
LEFT JOIN people_contactpoint e ON e.contact_id = c.id AND e.kind = 'email'"""
_SQL = f"""
SELECT c.patient_id, {COLUMNS}
FROM people_contact c
{JOINS}
WHERE c.patient_id IN ({{ids}})
ORDER BY c.patient_id, c.position
"""

CHUNK = 2000
_E, _S, _C = Channel.EMAIL, Channel.SMS, Channel.CALL
_NONE: frozenset[Channel] = frozenset()
_EMAIL_OUT = frozenset({_E})


@dataclass(slots=True)
class LoadedContact:
    """A contact's facts for the rules core, with the row ids needed to store a plan."""

    facts: ContactFacts
    language: str
    point_ids: dict[str, int]  # address → contact point id


def load_contacts(patient_ids: Iterable[int], category: Category) -> dict[int, list[LoadedContact]]:
    """Every contact of these patients, in position order, with their preference for
    `category`; one query per CHUNK patients."""
    ids = sorted(set(patient_ids))
    found: dict[int, list[LoadedContact]] = defaultdict(list)
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            cursor.execute(_SQL.format(ids=",".join(["%s"] * len(chunk))), [category, *chunk])
            for row in cursor.fetchall():
                found[row[0]].append(read_contact(row[0], row[1:], category))
    return found


_BY_ID_SQL = f"""
SELECT c.patient_id, {COLUMNS}
FROM people_contact c
{JOINS}
WHERE c.id IN ({{ids}})
"""


def load_contacts_by_id(contact_ids: Iterable[int], category: Category) -> dict[int, LoadedContact]:
    """These contacts by id, read as the planner reads them (same columns, same facts),
    with their preference for `category`; one query per CHUNK contacts. The send-time
    checks and replanning judge a planned message with these."""
    ids = sorted(set(contact_ids))
    found: dict[int, LoadedContact] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            cursor.execute(_BY_ID_SQL.format(ids=",".join(["%s"] * len(chunk))), [category, *chunk])
            for row in cursor.fetchall():
                loaded = read_contact(row[0], row[1:], category)
                found[loaded.facts.contact_id] = loaded
    return found


def as_date(value: object) -> dt.date | None:
    """A date from a raw row: SQLite returns dates as ISO text, PostgreSQL as dates."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def as_datetime(value: object) -> dt.datetime | None:
    """An aware UTC datetime from a raw row (SQLite returns ISO text)."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# Lookups instead of enum calls and fresh objects: this runs once per contact and
# appointment in the nightly pass.
_AUTHORITY = {a.value: a for a in Authority}
_PREFERENCE = {p.value: p for p in Preference}
_PREFERENCES: dict[tuple[Category, str], dict[Category, Preference]] = {}
_PHONE = {
    (sms, call): frozenset(c for flag, c in ((sms, _S), (call, _C)) if flag) or _NONE
    for sms in (False, True)
    for call in (False, True)
}


def _flags(sms: object, call: object) -> frozenset[Channel]:
    return _PHONE[(bool(sms), bool(call))]


def _preferences(category: Category, value: str | None) -> dict[Category, Preference]:
    # One shared mapping per (category, preference): the rules core only reads it.
    key = (category, value or "")
    found = _PREFERENCES.get(key)
    if found is None:
        found = _PREFERENCES[key] = {category: _PREFERENCE[key[1]]}
    return found


def read_contact(patient_id: int, fields: tuple, category: Category) -> LoadedContact:
    """A LoadedContact from the COLUMNS of one row (after the patient id)."""
    (contact_id, position, authority, end_date, zone, language, pref,
     m_id, m_value, m_valid, m_verified, m_out_sms, m_out_call, m_sms_ok, m_call_ok,
     h_id, h_value, h_valid, h_verified, h_out_call, h_call_ok,
     e_id, e_value, e_valid, e_verified, e_out_email) = fields  # fmt: skip
    mobile = home = email = None
    point_ids: dict[str, int] = {}
    if m_id is not None:
        mobile = ContactPointFacts(
            m_value,
            bool(m_valid),
            m_verified is not None,
            _flags(m_out_sms, m_out_call),
            _flags(m_sms_ok, m_call_ok),
        )
        point_ids[m_value] = m_id
    if h_id is not None:
        home = ContactPointFacts(
            h_value,
            bool(h_valid),
            h_verified is not None,
            _flags(0, h_out_call),
            _flags(0, h_call_ok),
        )
        point_ids.setdefault(h_value, h_id)
    if e_id is not None:
        email = ContactPointFacts(
            e_value, bool(e_valid), e_verified is not None, _EMAIL_OUT if e_out_email else _NONE
        )
        point_ids[e_value] = e_id
    facts = ContactFacts(
        contact_id,
        patient_id,
        position,
        _AUTHORITY[authority or ""],
        None if end_date is None else as_date(end_date),
        _preferences(category, pref),
        mobile,
        home,
        email,
        zone or None,
    )
    return LoadedContact(facts, language, point_ids)
