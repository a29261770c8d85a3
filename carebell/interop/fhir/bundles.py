"""Transaction Bundles: every entry or none (one database transaction), with a cap on
the entries, and `urn:uuid:` fullUrls resolved to the resources earlier entries made.

Entries are taken in the order FHIR gives them (creates, then updates), and a
create that references another entry's urn:uuid runs after it, whatever their order
in the Bundle. A failing entry undoes the whole Bundle and answers its own error,
naming the entry.

A stretch of plain appointment creates (a practice booking a day, a week) is written
through the bulk entry point, save_appointments, as one: one validation, one insert
and one planner pass instead of a thousand; if any is refused, the stretch is rolled
back to its savepoint and taken one entry at a time, so the answer is that entry's."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from carebell.interop.fhir import service
from carebell.interop.fhir.handlers import Context
from carebell.interop.fhir.outcomes import FhirError, invalid
from carebell.planning import replan


def max_entries() -> int:
    """The most entries a transaction may hold (CAREBELL_FHIR_MAX_ENTRIES, 1000)."""
    configured = getattr(settings, "FHIR_MAX_TRANSACTION_ENTRIES", None)
    if configured is not None:
        return int(configured)
    raw = os.environ.get("CAREBELL_FHIR_MAX_ENTRIES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1000


def transact(bundle: dict, ctx: Context, base: str) -> service.Result:
    entries = _entries(bundle)
    _type_references(entries)
    order = sorted(range(len(entries)), key=lambda i: _METHOD_ORDER[entries[i]["method"]])
    order = _after_their_references(order, entries)
    responses: dict[int, dict] = {}

    def done(index: int, result: service.Result) -> None:
        full_url = entries[index]["full_url"]
        if full_url:
            ctx.created[full_url] = tuple(result.location.split("/", 1))
        responses[index] = _response(result, base)

    # All or nothing, and each patient replanned once for the whole bundle.
    with transaction.atomic(), replan.once_at_end():
        for run in _runs(order, entries):
            if len(run) > 1 and _in_bulk(run, entries, ctx, done):
                continue
            for index in run:
                try:
                    result = _run(entries[index], ctx)
                except FhirError as error:
                    error.message = f"Bundle.entry[{index}]: {error.message}"
                    error.expression = error.expression or f"Bundle.entry[{index}]"
                    raise
                done(index, result)
    return service.Result(200, {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [responses[i] for i in range(len(entries))],
    })  # fmt: skip


_METHOD_ORDER = {"POST": 0, "PUT": 1}


def _runs(order: list[int], entries: list[dict]) -> list[list[int]]:
    """`order` cut into runs: each stretch of plain creates of booked appointments
    (none naming another of the stretch) is one run, every other entry a run alone."""
    runs: list[list[int]] = []
    current: list[int] = []
    made: set[str] = set()
    for index in order:
        entry = entries[index]
        if _bulkable(entry) and not entry["references"] & made:
            current.append(index)
            if entry["full_url"]:
                made.add(entry["full_url"])
            continue
        if current:
            runs.append(current)
            current, made = [], set()
        runs.append([index])
    if current:
        runs.append(current)
    return runs


def _bulkable(entry: dict) -> bool:
    from carebell.interop.fhir.parsing import HELD_STATUSES

    path = urlsplit(entry["url"])
    return (
        entry["method"] == "POST"
        and not path.query
        and not entry["if_none_exist"]
        and [p for p in path.path.split("/") if p][-1:] == ["Appointment"]
        and entry["resource"].get("resourceType") == "Appointment"
        and entry["resource"].get("status") not in HELD_STATUSES
    )


def _in_bulk(run: list[int], entries: list[dict], ctx: Context, done) -> bool:
    """Create a run's appointments through the bulk path, in a savepoint; False (and
    nothing written) when any is refused: the caller then takes them one by one,
    which answers the refused entry's own error."""
    try:
        with transaction.atomic():
            results = service.create_appointments([entries[i]["resource"] for i in run], ctx)
    except (FhirError, ValidationError, IntegrityError):
        return False
    for index, result in zip(run, results, strict=True):
        done(index, result)
    return True


def _entries(bundle: dict) -> list[dict]:
    if bundle.get("resourceType") != "Bundle":
        raise invalid("POST to the base takes a Bundle.", "resourceType")
    if bundle.get("type") != "transaction":
        raise invalid("Only transaction Bundles are taken (type: transaction).", "Bundle.type")
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise invalid("Bundle.entry must be a list.", "Bundle.entry")
    cap = max_entries()
    if len(raw) > cap:
        raise FhirError(413, f"A transaction holds at most {cap} entries, not {len(raw)}.",
                        code="too-costly")  # fmt: skip
    return [_entry(item, i) for i, item in enumerate(raw)]


def _entry(item, index: int) -> dict:
    where = f"Bundle.entry[{index}]"
    if not isinstance(item, dict):
        raise invalid(f"{where} must be an object.", where)
    request = item.get("request")
    if not isinstance(request, dict):
        raise invalid(f"{where} needs a request (method and url).", f"{where}.request")
    method, url = request.get("method"), request.get("url")
    if method not in _METHOD_ORDER:
        raise invalid(f"{where}: only POST and PUT entries are taken.", f"{where}.request.method")
    if not isinstance(url, str) or not url.strip():
        raise invalid(f"{where} needs request.url.", f"{where}.request.url")
    resource = item.get("resource")
    if not isinstance(resource, dict):
        raise invalid(f"{where} needs a resource.", f"{where}.resource")
    full_url = item.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise invalid(f"{where}.fullUrl must be a string.", f"{where}.fullUrl")
    return {
        "method": method,
        "url": url.strip(),
        "resource": resource,
        "full_url": full_url if full_url and full_url.startswith("urn:uuid:") else "",
        "if_none_exist": _text(request.get("ifNoneExist")),
        "if_match": _text(request.get("ifMatch")),
        "references": _urns(resource),
    }


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _urns(value) -> set[str]:
    found, stack = set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            reference = item.get("reference")
            if isinstance(reference, str) and reference.startswith("urn:uuid:"):
                found.add(reference)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _type_references(entries: list[dict]) -> None:
    """Give each urn:uuid reference the type of the entry it names (Reference.type),
    so a participant is known as the patient before that patient has an id."""
    types = {e["full_url"]: e["resource"].get("resourceType") for e in entries if e["full_url"]}
    for entry in entries:
        stack = [entry["resource"]]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                reference = item.get("reference")
                kind = types.get(reference) if isinstance(reference, str) else None
                if isinstance(kind, str) and "type" not in item:
                    item["type"] = kind
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def _after_their_references(order: list[int], entries: list[dict]) -> list[int]:
    """`order`, with each entry moved after the entries whose urn:uuid it references."""
    made_by = {e["full_url"]: i for i, e in enumerate(entries) if e["full_url"]}
    done: list[int] = []
    placed: set[int] = set()
    pending = list(order)
    while pending:
        progress = []
        for index in pending:
            needs = {made_by[u] for u in entries[index]["references"] if u in made_by} - {index}
            if needs <= placed:
                done.append(index)
                placed.add(index)
                progress.append(index)
        if not progress:
            raise FhirError(422, "The transaction's entries reference each other in a circle.")
        pending = [i for i in pending if i not in placed]
    return done


def _run(entry: dict, ctx: Context) -> service.Result:
    path = urlsplit(entry["url"])
    parts = [p for p in path.path.split("/") if p]
    if not parts:
        raise invalid("request.url must name a resource type.")
    handler = service.handler_for(parts[-2] if len(parts) >= 2 and entry["method"] == "PUT"
                                  and not path.query else parts[-1])  # fmt: skip
    if entry["resource"].get("resourceType") != handler.resource_type:
        raise invalid("The resource is not of the type request.url names.", "resourceType")
    if entry["method"] == "POST":
        return service.create(handler, entry["resource"], ctx, entry["if_none_exist"])
    if path.query:
        return service.conditional_update(
            handler, path.query, entry["resource"], ctx, entry["if_match"]
        )
    if len(parts) < 2:
        raise invalid("A PUT names Type/id or Type?criteria.")
    return service.update(handler, parts[-1], entry["resource"], ctx, entry["if_match"])


def _response(result: service.Result, base: str) -> dict:
    status = {200: "200 OK", 201: "201 Created"}[result.status]
    response = {"status": status, "location": f"{result.location}/_history/"
                f"{result.body['meta']['versionId']}", "etag": result.headers.get("ETag"),
                "lastModified": result.headers.get("Last-Modified")}  # fmt: skip
    return {"fullUrl": f"{base}{result.location}", "resource": result.body, "response": response}
