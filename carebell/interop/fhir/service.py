"""The FHIR interactions — read, search, create, update and their conditional forms —
independent of HTTP: each takes a handler, the request's context and plain values,
and returns a Result (status, resource, headers) or raises FhirError."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from carebell.audit import trail
from carebell.interop.fhir import parsing, records
from carebell.interop.fhir.handlers import HANDLERS, AppointmentHandler, Context, Handler
from carebell.interop.fhir.outcomes import FhirError, invalid
from carebell.interop.fhir.search import check_names, page_size
from carebell.planning import replan
from carebell.sites.models import Site


@dataclass
class Result:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)
    #: "Type/id" of the resource written or read (a transaction entry's location).
    location: str = ""


def handler_for(resource_type: str) -> Handler:
    handler = HANDLERS.get(resource_type)
    if handler is None:
        raise FhirError(404, f"carebell does not serve {resource_type[:40]!r} resources.")
    return handler


def require(ctx: Context, permission: str) -> None:
    if not ctx.user.has_perm(f"sites.{permission}"):
        raise FhirError(403, "Your account may not do this.")


def _answer(handler: Handler, row, record, status: int = 200) -> Result:
    resource = handler.render(row, record)
    meta = resource["meta"]
    headers = {"ETag": records.etag(int(meta["versionId"])), "Last-Modified": meta["lastUpdated"]}
    location = f"{handler.resource_type}/{resource['id']}"
    if status == 201:
        headers["Location"] = f"{location}/_history/{meta['versionId']}"
    return Result(status, resource, headers, location)


# Reading -----------------------------------------------------------------------------------


def read(handler: Handler, fhir_id: str, ctx: Context) -> Result:
    require(ctx, handler.read_permission)
    row, record = handler.find(ctx.user, fhir_id)
    trail.record(ctx.user, "view", object_type=_audit_type(handler), object_id=fhir_id,
                 site_id=(record.site_id if row is None else trail.site_id_of(row)),
                 detail={"door": "fhir"}, at=ctx.now)  # fmt: skip
    return _answer(handler, row, record)


def _audit_type(handler: Handler) -> str:
    return handler.model._meta.label_lower


def search(handler: Handler, params: dict[str, list[str]], ctx: Context, base: str) -> Result:
    require(ctx, handler.read_permission)
    check_names(params, [p.name for p in handler.params], handler.resource_type)
    count = page_size(params.get("_count", []))
    cursor = (params.get("_cursor") or [""])[-1]
    filters = {k: v for k, v in params.items() if k in {p.name for p in handler.params}}
    items, next_cursor = _page(handler, filters, ctx, count, cursor)
    trail.record(ctx.user, "list", object_type=_audit_type(handler),
                 detail={"door": "fhir", "filters": sorted(filters), "results": len(items)},
                 at=ctx.now)  # fmt: skip
    query = {k: v for k, v in params.items() if k != "_cursor"}
    self_url = f"{base}{handler.resource_type}?{urlencode(params, doseq=True)}"
    links = [{"relation": "self", "url": self_url}]
    if next_cursor:
        url = urlencode({**query, "_cursor": [next_cursor]}, doseq=True)
        links.append({"relation": "next", "url": f"{base}{handler.resource_type}?{url}"})
    entries = []
    for row, record in items:
        resource = handler.render(row, record)
        entries.append({"fullUrl": f"{base}{handler.resource_type}/{resource['id']}",
                        "resource": resource, "search": {"mode": "match"}})  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    return Result(200, bundle)


def _page(handler: Handler, filters, ctx: Context, count: int, cursor: str):
    """A page of (row, record) by id, and the cursor of the next page or "". The
    held appointments come after the rows ("h" cursors)."""
    phase, after = _cursor(cursor)
    items: list = []
    if phase == "r":
        rows = handler.rows(ctx.user)
        for name, values in filters.items():
            rows = handler.filter(rows, name, values, ctx)
        page = list(rows.filter(pk__gt=after).order_by("pk")[: count + 1])
        found = records.records_for(handler.resource_type, [r.pk for r in page[:count]])
        items = [(r, found.get(r.pk)) for r in page[:count]]
        if len(page) > count:
            return items, f"r{page[count - 1].pk}"
        after = 0
    if isinstance(handler, AppointmentHandler):
        room = count - len(items)
        held = list(handler.held(ctx.user, filters).filter(pk__gt=after).order_by("pk")[: room + 1])
        items += [(None, r) for r in held[:room]]
        if len(held) > room:
            return items, f"h{held[room - 1].pk}" if room else f"h{after}"
    return items, ""


def _cursor(cursor: str) -> tuple[str, int]:
    if not cursor:
        return "r", 0
    phase, number = cursor[:1], cursor[1:]
    if phase not in ("r", "h") or not number.isdigit() or len(number) > 18:
        raise invalid("_cursor is not one of this server's page links.")
    return phase, int(number)


def matches(handler: Handler, criteria: str, ctx: Context) -> list:
    """(row, record) of the resources a conditional create or update names."""
    params = parse_qs(criteria, keep_blank_values=True)
    if not params:
        raise invalid("A conditional request needs search criteria (e.g. identifier=…).")
    check_names(params, [p.name for p in handler.params], handler.resource_type)
    items, _ = _page(handler, params, ctx, 2, "")
    return items


# Writing -----------------------------------------------------------------------------------


def create(handler: Handler, body, ctx: Context, if_none_exist: str = "") -> Result:
    """Create a resource; with `if_none_exist`, answer the one that matches instead."""
    writable(handler, ctx)
    parsed = parsing.read(body, handler.resource_type)
    if not if_none_exist:
        return _write(handler, parsed, None, None, ctx)
    return _conditional(handler, if_none_exist, ctx, lambda found: (
        _answer(handler, *found[0]) if found else _write(handler, parsed, None, None, ctx)
    ))  # fmt: skip


def update(handler: Handler, fhir_id: str, body, ctx: Context, if_match: str = "") -> Result:
    writable(handler, ctx)
    parsed = parsing.read(body, handler.resource_type)
    given = parsed.model.id
    if given is not None and given != fhir_id:
        raise invalid(f"The resource's id {given[:40]!r} is not the one in the URL.", "id")
    with transaction.atomic():
        row, record = handler.find(ctx.user, fhir_id)
        records.lock(f"{handler.resource_type}/{fhir_id}")
        # Locked and read again: a patient's confirmation or a staff edit that landed
        # since `find` is neither lost nor mistaken for the version asked for.
        record, row = _fresh(record), _fresh(row)
        records.check_if_match(if_match, records.version_of(record, row))
        return _write(handler, parsed, row, record, ctx)


def conditional_update(handler: Handler, criteria: str, body, ctx: Context, if_match="") -> Result:
    writable(handler, ctx)
    parsed = parsing.read(body, handler.resource_type)

    def apply(found):
        if not found:
            return _write(handler, parsed, None, None, ctx)
        row, record = found[0]
        records.check_if_match(if_match, records.version_of(record, row))
        return _write(handler, parsed, row, record, ctx)

    return _conditional(handler, criteria, ctx, apply)


def writable(handler: Handler, ctx: Context) -> None:
    if not handler.writable:
        raise FhirError(405, f"{handler.resource_type} resources are read-only here.")
    require(ctx, handler.write_permission)


def _conditional(handler: Handler, criteria: str, ctx: Context, apply) -> Result:
    """Run `apply(matches)` with writers of the same criteria one after the other.
    On PostgreSQL an advisory lock orders them; elsewhere (and as a second guard)
    the identifier's unique constraint refuses the second insert, and the request
    is answered again from what the first one committed."""
    for attempt in range(2):
        try:
            with transaction.atomic():
                records.lock(f"{handler.resource_type}?{criteria}")
                found = matches(handler, criteria, ctx)
                if len(found) > 1:
                    raise FhirError(412, "The criteria match more than one resource.")
                return apply(found)
        except FhirError as error:
            if error.status != 409 or attempt:
                raise
        except IntegrityError:
            if attempt:
                raise FhirError(409, "Another request wrote the same resource at once.") from None
    raise FhirError(409, "Another request wrote the same resource at once.")


def _fresh(obj):
    if obj is None:
        return None
    return type(obj).objects.select_for_update().filter(pk=obj.pk).first() or obj


def _write(handler: Handler, parsed: parsing.Parsed, row, record, ctx: Context) -> Result:
    """Save through the entry points and stamp the new version, in one transaction."""
    data = parsed.data
    created = row is None and record is None
    with transaction.atomic(), replan.once_at_end():  # one replan per patient per write
        if isinstance(data, parsing.AppointmentIn) and data.is_held:
            row, record = _hold(handler, parsed, row, record, ctx)
        else:
            version = records.version_of(record, row) + 1 if record or row else 1
            site = handler.site_for_create(data, ctx) if row is None else _site_of(row)
            if Site.delivery.related.is_cached(site):  # read in this request with it
                replan.read_for_block(site)
            row = handler.write(data, row, ctx, site)
            record = records.stamp(
                handler.resource_type, site, row, data.identifiers, ctx.now,
                version=version, record=record, status=data_status(data), created=created,
            )  # fmt: skip
    return _answer(handler, row, record, 201 if created else 200)


def create_appointments(bodies: list[dict], ctx: Context) -> list[Result]:
    """Create many booked appointments at once (a transaction's POSTs), as `create`
    would one after the other, through the bulk entry point (save_appointments):
    one validation, one insert and one planner pass per site, their records and
    identifiers in bulk. Run it in a savepoint: on a refusal the caller goes again
    one by one, for the entry's own answer."""
    from carebell.appointments.actions import save_appointments
    from carebell.interop.fhir import ingest
    from carebell.interop.fhir.models import FhirIdentifier, FhirRecord

    handler = HANDLERS["Appointment"]
    writable(handler, ctx)
    parsed = [parsing.read(body, handler.resource_type) for body in bodies]
    if any(p.data.is_held for p in parsed):
        raise FhirError(422, "A held appointment is created one at a time.")
    pairs = [(p.data, handler.resolve_patient(p.data.patient, ctx)) for p in parsed]
    by_site: dict[int, list[int]] = {}
    for index, (_, patient) in enumerate(pairs):
        by_site.setdefault(patient.site_id, []).append(index)
    rows: list = [None] * len(pairs)
    for indexes in by_site.values():
        site = pairs[indexes[0]][1].site
        made = ingest.new_appointments([pairs[i] for i in indexes], site, ctx.now)
        try:
            save_appointments(made, by=ctx.user, source=ingest.SOURCE, now=ctx.now)
        except ValidationError as error:
            raise FhirError(422, str(error)[:200]) from None
        for index, row in zip(indexes, made, strict=True):
            rows[index] = row
    records = FhirRecord.objects.bulk_create(
        FhirRecord(resource_type="Appointment", site_id=row.site_id, fhir_id=str(row.pk),
                   object_id=row.pk, version=1, last_updated=ctx.now,
                   row_updated_at=row.updated_at, held_status=data_status(data))
        for row, (data, _) in zip(rows, pairs, strict=True)
    )  # fmt: skip
    identifiers = []
    for record, (data, _) in zip(records, pairs, strict=True):
        record.known_identifiers = list(dict.fromkeys(data.identifiers))
        identifiers += [
            FhirIdentifier(record=record, site_id=record.site_id, resource_type="Appointment",
                           system=system, value=value)
            for system, value in record.known_identifiers
        ]  # fmt: skip
    try:
        FhirIdentifier.objects.bulk_create(identifiers, batch_size=1000)
    except IntegrityError:
        raise records_conflict() from None
    return [_answer(handler, row, record, 201) for row, record in zip(rows, records, strict=True)]


def records_conflict() -> FhirError:
    return FhirError(409, "An identifier names another Appointment of the site.")


def data_status(data) -> str:
    return getattr(data, "status", "") or ""


def _site_of(row):
    site = getattr(row, "site", None)
    if site is None:
        site = row.patient.site if hasattr(row, "patient") else row.prescription.site
    return site


def _hold(handler: Handler, parsed: parsing.Parsed, row, record, ctx: Context):
    """A proposed, pending or waitlisted appointment: kept here, planning nothing."""
    if row is not None:
        raise FhirError(422, "A booked appointment cannot become proposed or pending again: "
                        "cancel it instead.", expression="Appointment.status")  # fmt: skip
    patient = handler.resolve_patient(parsed.data.patient, ctx)
    held = parsed.model.model_dump(mode="json", exclude_none=True)
    held.pop("id", None), held.pop("meta", None), held.pop("identifier", None)
    for participant in held.get("participant", []):
        reference = (participant.get("actor") or {}).get("reference", "")
        if reference.startswith("Patient/") or reference.startswith("urn:"):
            participant["actor"]["reference"] = f"Patient/{patient.pk}"
    held["_patient_id"] = patient.pk
    if record is None:
        trail.record(ctx.user, "create", object_type="interop_fhir.fhirrecord",
                     site_id=patient.site_id, detail={"fields": ["held"]}, at=ctx.now)  # fmt: skip
    version = record.version + 1 if record is not None else 1
    record = records.stamp("Appointment", patient.site, None, parsed.data.identifiers, ctx.now,
                           version=version, record=record, held=held,
                           status=parsed.data.status)  # fmt: skip
    return None, record
