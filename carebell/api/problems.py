"""The API's one error shape: RFC 9457 problem details (application/problem+json),
for every 4xx and 5xx — ninja's own validation errors, 401, 404, 405, 429 and the
unexpected 500 included."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://carebell.invalid/problems/"
log = logging.getLogger("carebell.api")


class FieldError(Schema):
    field: str
    message: str


class Problem(Schema):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[FieldError] = []


class ApiProblem(Exception):
    """Raised by a route to answer with a problem: `slug` names its type."""

    def __init__(self, status: int, slug: str, detail: str = "", *, errors=(), headers=None):
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.errors = list(errors)
        self.headers = headers or {}


def response(
    request: HttpRequest | None,
    status: int,
    slug: str,
    detail: str = "",
    *,
    errors=(),
    headers: dict | None = None,
) -> HttpResponse:
    body = {
        "type": TYPE_BASE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.path if request is not None else "",
        "errors": [{"field": f, "message": m} for f, m in errors],
    }
    answer = HttpResponse(json.dumps(body), status=status, content_type=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        answer[name] = value
    return answer


def is_problem(answer: HttpResponse) -> bool:
    return answer.get("Content-Type", "").startswith(MEDIA_TYPE)


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "too-many-requests",
}


def from_plain(request: HttpRequest, answer: HttpResponse) -> HttpResponse:
    """Any non-problem error answer (Django's 404 page, ninja's 405 text) as a problem,
    keeping the headers that matter (Allow, Retry-After)."""
    status = answer.status_code
    slug = _SLUGS.get(status, "server-error" if status >= 500 else "error")
    keep = {
        h: answer[h] for h in ("Allow", "Retry-After", "WWW-Authenticate") if answer.has_header(h)
    }
    return response(request, status, slug, headers=keep)


def django_errors(error: DjangoValidationError) -> list[tuple[str, str]]:
    if hasattr(error, "error_dict"):
        return [(field, str(m)) for field, items in error.message_dict.items() for m in items]
    return [("", str(m)) for m in error.messages]


#: Where ninja says a value came from, and the names of the routes' parameters that
#: hold a whole body or query model: neither is part of the field's name.
_SOURCES = frozenset({"body", "query", "path", "header"})
_MODEL_PARAMS = frozenset({"body", "page", "filters", "query"})


def _location(loc) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in _MODEL_PARAMS:
        parts = parts[1:]
    return ".".join(parts)


def install(api) -> None:
    """Make every error the api raises a problem."""

    @api.exception_handler(ApiProblem)
    def _problem(request, exc: ApiProblem):
        return response(
            request, exc.status, exc.slug, exc.detail, errors=exc.errors, headers=exc.headers
        )

    @api.exception_handler(NinjaValidationError)
    def _invalid(request, exc: NinjaValidationError):
        errors = [(_location(e.get("loc", ())), str(e.get("msg", ""))) for e in exc.errors]
        return response(
            request, 422, "invalid", "The request does not match the schema.", errors=errors
        )

    @api.exception_handler(DjangoValidationError)
    def _refused(request, exc: DjangoValidationError):
        return response(
            request, 422, "invalid", "carebell refused the change.", errors=django_errors(exc)
        )

    @api.exception_handler(AuthenticationError)
    def _unauthorized(request, exc):
        return response(
            request, 401, "unauthorized", "A valid API token is needed: Authorization: Bearer cb_…",
            headers={"WWW-Authenticate": 'Bearer realm="carebell"'},
        )  # fmt: skip

    @api.exception_handler(HttpError)
    def _http(request, exc: HttpError):
        return response(request, exc.status_code, _SLUGS.get(exc.status_code, "error"), str(exc))

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return response(request, 404, "not-found", "No such object.")

    @api.exception_handler(PermissionDenied)
    def _forbidden(request, exc):
        return response(request, 403, "forbidden", "Your role does not allow this here.")

    @api.exception_handler(IntegrityError)
    def _conflict(request, exc):
        # Two requests raced for the same unique slot; the loser is told to read again.
        return response(
            request, 409, "conflict", "Another change to the same object won; read it again."
        )

    @api.exception_handler(Exception)
    def _unexpected(request, exc):
        # The traceback names code lines, not request data: no patient data in the log.
        log.exception(
            "API error on %s %s",
            request.method,
            getattr(request, "resolver_match", None) and request.resolver_match.route,
        )
        return response(request, 500, "server-error", "carebell could not answer this request.")
