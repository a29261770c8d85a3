"""Versions and identifiers of FHIR resources (carebell.interop.fhir.models).

A resource's version is its record's counter, plus one when its carebell row changed
since FHIR last wrote it (a staff edit): so an `If-Match` made before a staff edit
fails with 412 instead of undoing it.
"""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, connection
from django.db.models import Q

from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.interop.fhir.outcomes import FhirError
from carebell.prepared import execute_prepared, insert, insert_statement, inserted

HELD_PREFIX = "h"


def records_for(resource_type: str, object_ids) -> dict[int, FhirRecord]:
    rows = FhirRecord.objects.filter(resource_type=resource_type, object_id__in=list(object_ids))
    return {r.object_id: r for r in rows.prefetch_related("identifiers")}


def version_of(record: FhirRecord | None, row) -> int:
    if record is None:
        return 1
    if row is not None and record.row_updated_at and row.updated_at > record.row_updated_at:
        return record.version + 1
    return record.version


def last_updated_of(record: FhirRecord | None, row):
    if row is None:
        return record.last_updated
    if record is None:
        return row.updated_at
    return max(row.updated_at, record.last_updated)


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_if_match(header: str, version: int) -> None:
    """412 when `If-Match` names another version than the current one."""
    if not header:
        return
    wanted = header.strip()
    wanted = wanted[2:] if wanted.startswith("W/") else wanted
    if wanted.strip('"') != str(version):
        raise FhirError(
            412, f"If-Match {header[:20]!r} names another version: the resource is at {version}."
        )


def stamp(resource_type: str, site, row, identifiers, now, *, version: int, record=None,
          held=None, status="", created=False):  # fmt: skip
    """Record a FHIR write as `version`, and replace the identifiers. An identifier
    another resource of the site holds answers 409."""
    if record is None and row is not None and not created:
        record = FhirRecord.objects.filter(resource_type=resource_type, object_id=row.pk).first()
    new = record is None
    if new:
        record = FhirRecord(resource_type=resource_type, site=site, fhir_id="")
    record.version, record.last_updated, record.site = version, now, site
    record.object_id = row.pk if row is not None else None
    record.row_updated_at = row.updated_at if row is not None else None
    record.held = held
    record.held_status = status
    if held is not None:
        record.held_patient_id = held.get("_patient_id")
        record.held = {k: v for k, v in held.items() if k != "_patient_id"}
    if not record.fhir_id and row is not None:
        record.fhir_id = str(row.pk)
    ordered = list(dict.fromkeys(identifiers))
    if new and ordered and record.fhir_id and connection.vendor == "postgresql":
        _insert_with_identifiers(record, ordered)  # one round trip for both
        return record
    if new:  # save()'s INSERT, prepared: no signal listens (tests/records/test_entry_points.py)
        insert([record])
    else:
        record.save()
    if not record.fhir_id:
        record.fhir_id = f"{HELD_PREFIX}{record.pk}"
        record.save(update_fields=["fhir_id"])
    _replace_identifiers(record, ordered, new=new)
    return record


def _insert_with_identifiers(record: FhirRecord, ordered: list[tuple[str, str]]) -> None:
    """A new record and its identifiers in one statement: the record's INSERT (as
    `insert` writes it) as a WITH clause whose id the identifiers' rows take. An
    identifier another resource holds fails the statement, and so neither row is
    written: 409, as `_replace_identifiers` answers."""
    sql, params = insert_statement([record])
    rows = ", ".join(["(%s, %s)"] * len(ordered))
    sql = (
        f"WITH r AS ({sql}) INSERT INTO {FhirIdentifier._meta.db_table} "
        "(record_id, site_id, resource_type, system, value) "
        "SELECT r.id, %s::bigint, %s, v.system, v.value "
        f"FROM r, (VALUES {rows}) AS v(system, value) RETURNING record_id"
    )
    params += [record.site_id, record.resource_type, *(x for pair in ordered for x in pair)]
    try:
        with execute_prepared(sql, params) as cursor:
            inserted(record, cursor.fetchone()[0])
    except IntegrityError:
        raise _conflict(record.resource_type) from None
    record.known_identifiers = ordered  # what render reads back, without a query


def _conflict(resource_type: str) -> FhirError:
    return FhirError(
        409,
        f"An identifier of this {resource_type} already names another {resource_type} of "
        "the site: use a conditional create or update.",
    )


def _replace_identifiers(record: FhirRecord, ordered: list, *, new: bool) -> None:
    wanted = set(ordered)
    if new:
        record.known_identifiers = ordered  # what render reads back, without a query
    kept = set() if new else set(record.identifiers.values_list("system", "value"))
    if kept == wanted:
        return
    if kept - wanted:
        stale = Q()
        for system, value in kept - wanted:
            stale |= Q(system=system, value=value)
        record.identifiers.filter(stale).delete()
    # No savepoint: a conflict fails the caller's whole transaction, which rolls back.
    try:
        insert([
            FhirIdentifier(record=record, site_id=record.site_id,
                           resource_type=record.resource_type, system=s, value=v)
            for s, v in ordered if (s, v) not in kept
        ])  # fmt: skip
    except IntegrityError:
        raise _conflict(record.resource_type) from None


def lock(key: str) -> None:
    """Serialise writers on `key` until the transaction ends (PostgreSQL): two
    conditional creates of one identifier then search one after the other."""
    if connection.vendor != "postgresql":
        return
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])
