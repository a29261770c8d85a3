"""The CapabilityStatement, made from the handlers registry: a resource type, an
interaction or a search parameter is listed because a handler serves it."""

from __future__ import annotations

from carebell.interop.fhir.bundles import max_entries
from carebell.interop.fhir.handlers import HANDLERS, Handler
from carebell.interop.fhir.search import MAX_COUNT


def interactions(handler: Handler) -> list[str]:
    found = ["read", "search-type"]
    if handler.writable:
        found += ["create", "update"]
    return found


def statement(base: str, published_at: str) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published_at,
        "kind": "instance",
        "software": {"name": "carebell"},
        "implementation": {"description": "carebell FHIR R4 endpoint", "url": base.rstrip("/")},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": (
                f"Bearer API tokens. Searches page by `next` links, at most {MAX_COUNT} "
                f"entries a page; a transaction holds at most {max_entries()} entries."
            ),
            "security": {"service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "OAuth", "display": "Bearer token"}]}],
                "description": "Authorization: Bearer <carebell API token>"},
            "resource": [_resource(h) for h in HANDLERS.values()],
            "interaction": [{"code": "transaction"}],
        }],
    }  # fmt: skip


def _resource(handler: Handler) -> dict:
    resource = {
        "type": handler.resource_type,
        "interaction": [{"code": code} for code in interactions(handler)],
        "versioning": "versioned-update",
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [
            {"name": p.name, "type": p.kind, "documentation": p.documentation}
            for p in handler.params
        ],
    }
    if handler.writable:
        resource.update(
            conditionalCreate=True, conditionalUpdate=True, conditionalRead="not-supported"
        )
    return resource
