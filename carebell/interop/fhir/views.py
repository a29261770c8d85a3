"""/fhir/R4: plain Django views, JSON in and out (application/fhir+json).

A client authenticates with a carebell API token (`Authorization: Bearer cb_…`) and
acts as the token's user: it sees and writes only that person's sites
(carebell.sites.access), and its writes are audited with that person as actor.
Every refusal is an OperationOutcome with its status; `metadata` needs no token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from carebell.api import tokens
from carebell.api.door import GUARD as API_TOKEN
from carebell.interop.fhir import bundles, capability, parsing, service
from carebell.interop.fhir.handlers import Context
from carebell.interop.fhir.outcomes import FhirError, operation_outcome
from carebell.web.lane import token_door

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/fhir+json; charset=utf-8"
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def respond(status: int, body: dict, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type=CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        if value:
            response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def fhir_view(methods: tuple[str, ...]) -> Callable:
    """A FHIR route: the allowed methods, a token, and every error as an
    OperationOutcome (never a Django error page)."""

    def decorate(view):
        @csrf_exempt
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                return respond(405, operation_outcome(
                    f"{request.method} is not supported here.", code="not-supported"),
                    {"Allow": ", ".join(methods)})  # fmt: skip
            try:
                token = tokens.authenticate(request)
                if token is None:
                    raise FhirError(401, "A valid carebell API token is needed "
                                    "(Authorization: Bearer cb_…).")  # fmt: skip
                ctx = Context(token.user, timezone.now(),
                              request.headers.get("X-Carebell-Site", "").strip())  # fmt: skip
                result = view(request, ctx, *args, **kwargs)
            except FhirError as error:
                extra = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
                return respond(error.status, error.outcome(), extra)
            except Http404:
                return respond(404, operation_outcome("Not found.", code="not-found"))
            return respond(result.status, result.body, result.headers)

        # The guard the route test reads: an API token, then the access rule per row.
        wrapped.staff_permission = API_TOKEN
        return token_door(wrapped)

    return decorate


def body_of(request: HttpRequest) -> bytes:
    kind = request.content_type or ""
    if kind not in _JSON_TYPES:
        raise FhirError(415, "Send the resource as application/fhir+json.")
    try:
        return request.body
    except RequestDataTooBig:
        raise FhirError(413, "The body is larger than this server takes.",
                        code="too-costly") from None  # fmt: skip


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/fhir/R4/")


def _params(request: HttpRequest) -> dict[str, list[str]]:
    return {key: request.GET.getlist(key) for key in request.GET}


# No token: a FHIR client reads the CapabilityStatement before it has one.
@csrf_exempt
def metadata(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return respond(405, operation_outcome("metadata is read with GET.", code="not-supported"))
    published = timezone.now().date().isoformat()
    return respond(200, capability.statement(base_url(request), published))


@fhir_view(("POST",))
def base(request: HttpRequest, ctx: Context):
    bundle = parsing.decode(body_of(request))
    return bundles.transact(bundle, ctx, base_url(request))


@fhir_view(("GET", "POST", "PUT"))
def type_level(request: HttpRequest, ctx: Context, resource_type: str):
    handler = service.handler_for(resource_type)
    if request.method == "GET":
        return service.search(handler, _params(request), ctx, base_url(request))
    body = body_of(request)
    if request.method == "POST":
        return service.create(handler, body, ctx, request.headers.get("If-None-Exist", ""))
    criteria = request.META.get("QUERY_STRING", "")
    if not criteria:
        raise FhirError(405, "PUT names a resource (Type/id) or search criteria (Type?…).")
    return service.conditional_update(
        handler, criteria, body, ctx, request.headers.get("If-Match", "")
    )


@fhir_view(("GET", "PUT"))
def instance(request: HttpRequest, ctx: Context, resource_type: str, fhir_id: str):
    handler = service.handler_for(resource_type)
    if request.method == "GET":
        return service.read(handler, fhir_id, ctx)
    return service.update(
        handler, fhir_id, body_of(request), ctx, request.headers.get("If-Match", "")
    )


@fhir_view(("GET", "POST", "PUT"))
def unknown(request: HttpRequest, ctx: Context, rest: str = ""):
    raise FhirError(404, "No such FHIR interaction here (see /fhir/R4/metadata).")
