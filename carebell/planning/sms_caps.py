"""The SMS frequency caps' ledger for one site's planning pass.

`carebell.core.caps` decides; `SmsCaps` feeds it each patient's texts (those already
in the outbox, read once per pass for a sweep or per chunk of patients otherwise,
plus those planned earlier in the pass) and applies its answer to a decision: allow,
defer to the first allowed instant of a day with room, or skip with the caps' reasons
(the writer then keeps it as `blocked` (cap): never silently dropped). Appointment,
recall and pharmacy treatment texts share one ledger, so they share one budget per
patient and site.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from django.db import connection

from carebell.core.caps import CapAction, SmsRecord, fit_sms_cap
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind, OutboxStatus
from carebell.core.windows import DeliveryPolicy
from carebell.messaging.models import OutboxMessage
from carebell.planning.contacts import as_datetime
from carebell.planning.decisions import Decision
from carebell.planning.subjects import chunks
from carebell.prepared import execute_prepared
from carebell.sql import ints, utc_params

# Rows that no longer count toward the SMS caps: they will never reach the patient.
_NOT_SENT = [OutboxStatus.CANCELLED.value, OutboxStatus.BLOCKED.value, OutboxStatus.FAILED.value]
_SMS = Channel.SMS.value
_CAPPED = frozenset(k.value for k in CAPPED_KINDS)
_KIND = {k.value: k for k in Kind}
#: How far back stored texts still count: the rolling week before the earliest day
#: a text of this pass can be planned on, and a day for time zones.
LOOKBACK = dt.timedelta(days=8)


class SmsCaps:
    """The SMS caps (carebell.core.caps) for one site's pass: the texts already in the
    outbox plus those planned earlier in the pass, per patient and phone number (two
    parents each get their one text a day about a child)."""

    def __init__(self, site_id: int, now: dt.datetime) -> None:
        self.site_id, self.now = site_id, now
        # Per (patient, number): its texts as plain tuples of plain values (`_Text`),
        # one per dedupe key (a stored row planned again in this pass replaces itself,
        # never counts twice). A pass keeps one per patient: tuples of atoms leave the
        # garbage collector's care, where objects or lists would make every full
        # collection walk them all.
        self.history: dict[tuple[int, str], tuple[tuple, ...]] = {}
        self.loaded: set[int] = set()
        self.loaded_all = False

    def load(self, patient_ids: Iterable[int] | None) -> None:
        """Read the outbox's capped texts of these patients (each patient once), or,
        with None, of every patient of the site: a sweep's one query for the pass."""
        if self.loaded_all:
            return
        params = self._params()
        if patient_ids is None:
            rows, self.loaded_all = _site_rows(params), True
        else:
            ids = sorted(set(patient_ids) - self.loaded)
            rows = _history_rows(params, ids)
            self.loaded.update(ids)
        self._take(rows)

    def read_for(self, patient_ids: list[int]) -> tuple[str, list] | None:
        """On PostgreSQL, the one prepared statement `load` would run for these few
        patients (at most PG_CHUNK), for a caller that sends it with its own reads
        (`prepared.read_together`) and gives its rows to `loaded_from`: None when
        `load` would read nothing, or not by one such statement."""
        ids = sorted(set(patient_ids) - self.loaded)
        if self.loaded_all or not ids or len(ids) > PG_CHUNK or connection.vendor != "postgresql":
            return None
        return _pg_history(self._params(), ids)

    def loaded_from(self, patient_ids: list[int], rows: list[tuple]) -> None:
        """What `load` does with the rows `read_for(patient_ids)`'s statement read."""
        self.loaded.update(patient_ids)
        self._take(rows)

    def _params(self) -> list:
        return utc_params([self.site_id, _SMS, self.now - LOOKBACK])

    def _take(self, rows) -> None:
        for pid, to, planned, sent, kind, key, etype, eid in rows:
            self._remember((pid, to), (as_datetime(sent or planned), kind, key, False, etype, eid))

    def forget(self, patient_ids: Iterable[int]) -> None:
        """Drop what the ledger holds for these patients, so the next `load` reads their
        texts from the outbox again: for a pass that keeps its ledger across flushes,
        when a flush did not store every row it was given (a key the outbox held
        already, whose stored row then counts instead of the planned one)."""
        ids = set(patient_ids)
        if self.loaded_all:
            raise ValueError("a sweep's ledger holds the whole site: read it anew instead")
        self.loaded -= ids
        for key in [k for k in self.history if k[0] in ids]:
            del self.history[key]

    def apply(self, d: Decision, zone: ZoneInfo | None, policy: DeliveryPolicy, now) -> None:
        """Keep `d`, defer it to the first allowed instant of a day with room, or skip
        it with the cap's reasons. Call `load` for its patient first."""
        if d.channel != _SMS or d.kind not in _CAPPED or d.patient_id is None:
            return
        key, own = (d.patient_id, d.to), d.dedupe_key
        found = self.history.get(key, ())
        # Its own stored row is not a rival: re-planning must reach the same answer.
        # Commonly there is nothing else: the patient's first text, or its own row.
        if len(found) == 1 and found[0][_KEY] == own:
            found = ()
        rivals = tuple(t for t in found if t[_KEY] != own) if found else ()
        if rivals:
            _follow(d, [_record(t) for t in rivals], zone or policy.zone, policy, zone)
        if d.planned_at is None:
            d.status = "skipped"
            return
        self.history[key] = (*rivals, (d.planned_at, d.kind, own, True, d.entity_type, d.entity_id))

    def _remember(self, key: tuple[int, str], text: tuple) -> None:
        found = self.history.get(key, ())
        if text[_KEY] is not None:
            found = tuple(t for t in found if t[_KEY] != text[_KEY])
        self.history[key] = (*found, text)


#: Where a ledger text (at, kind, dedupe key, pending, entity type, entity id) holds
#: its dedupe key. Texts stay plain tuples: the ledger keeps one per text for a whole
#: pass, and the garbage collector stops tracking a plain tuple of plain values (a
#: NamedTuple subclass it walks on every full collection).
_KEY = 2


def _record(text: tuple) -> SmsRecord:
    """A ledger text (at, kind, dedupe key, pending, entity type, entity id) as the
    core's SmsRecord."""
    at, kind, key, pending, entity_type, entity_id = text
    return SmsRecord(at, _KIND[kind], key, pending, (entity_type, entity_id))


_HISTORY_SQL = f"""
SELECT o.patient_id, o.to_address, o.planned_at, o.sent_at, o.kind, o.dedupe_key,
       o.entity_type, o.entity_id
FROM {OutboxMessage._meta.db_table} o {{join}}
WHERE {{site}} = %s AND o.channel = %s AND o.planned_at >= %s
  AND o.kind IN ({", ".join(f"'{k}'" for k in sorted(_CAPPED))})
  AND o.status NOT IN ({", ".join(f"'{s}'" for s in _NOT_SENT)}) {{only}}
"""
#: Rows fetched at a time from the server-side cursor of a sweep's history.
FETCH = 5_000
_CURSOR = "sms_caps_history"
#: Patients per history query: PostgreSQL takes their ids as one array parameter.
PG_CHUNK = 20_000


def _site_rows(params: list) -> Iterator[tuple]:
    """The capped texts of every patient of the site (site, channel, since: `params`)."""
    sql = _HISTORY_SQL.format(site="o.site_id", join="", only="")
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield from cursor.fetchall()
        return
    # A server-side cursor (the site may hold millions), in binary: its datetimes
    # cost a third of the text ones to read.
    with connection.cursor() as cursor:
        named = cursor.cursor.connection.cursor(name=_CURSOR, binary=True, withhold=True)
        with named:
            named.itersize = FETCH
            named.execute(sql, params)
            yield from named


def _history_rows(params: list, ids: list[int]) -> Iterator[tuple]:
    """The capped texts of the patients `ids` (site, channel, since: `params`)."""
    if not ids:
        return
    if connection.vendor != "postgresql":
        for chunk in chunks(ids):
            only = f"AND o.patient_id IN ({', '.join(['%s'] * len(chunk))})"
            with connection.cursor() as cursor:
                cursor.execute(
                    _HISTORY_SQL.format(site="o.site_id", join="", only=only), [*params, *chunk]
                )
                yield from cursor.fetchall()
        return
    for chunk in chunks(ids, PG_CHUNK):
        with execute_prepared(*_pg_history(params, chunk)) as cursor:
            yield from cursor.fetchall()


def _pg_history(params: list, ids: list[int]) -> tuple[str, list]:
    """The prepared statement of these patients' capped texts on PostgreSQL (at most
    PG_CHUNK of them). Prepared: a change's replan reads a patient or two, and
    planning this cost PostgreSQL more than running it."""
    return _PG_HISTORY_SQL, [ints(ids), *params]


# The ids travel as one array (server-side binding: a filter over an array with = ANY
# is a linear search per row), and each patient's texts are looked up on their own by
# the outbox's (patient, planned_at) index, so a read costs what its patients' texts
# do, however many texts the site holds. The estimates cannot be trusted to find that
# plan: an import stores tens of thousands of texts in minutes, faster than autovacuum
# analyses them, and the stale counts made PostgreSQL hash-join every text of the site (~0.4 s a
# read) or, given a lateral, scan the site's (site, planned_at) index once per
# patient (minutes). So OFFSET 0 keeps the lateral from being flattened into a join,
# and `site_id + 0` keeps the site's index out of it (the site stays a filter: a
# patient's texts are all the site's).
_PG_HISTORY_SQL = f"""
SELECT h.* FROM unnest(%s::bigint[]) AS wanted(id) CROSS JOIN LATERAL (
{_HISTORY_SQL.format(site="o.site_id + 0", join="", only="AND o.patient_id = wanted.id")}
OFFSET 0) AS h
"""


def _follow(d: Decision, others: list[SmsRecord], cap_zone, policy, zone) -> None:
    """Move `d` to where the caps let it go, or clear its time when nowhere."""
    if not others:
        return

    def window(at: dt.datetime) -> dt.datetime | None:
        return policy.earliest_allowed(Channel.SMS, at, d.not_after, zone)

    about = (d.entity_type, d.entity_id)
    found = fit_sms_cap(
        _KIND[d.kind], Channel.SMS, d.planned_at, others, cap_zone, d.not_after, window, about
    )
    if found.action is CapAction.ALLOW:
        return
    d.reasons = (*d.reasons, *found.reasons)
    d.planned_at = found.at if found.action is CapAction.DEFER else None
