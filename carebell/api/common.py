"""What the API's routes share: the token as the acting user, the one access rule,
keyset pages, ETags and input that cannot hold what the database refuses."""

from __future__ import annotations

import base64
import hashlib
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Schema
from ninja.security import HttpBearer
from pydantic import BaseModel, ConfigDict, create_model, model_validator

from carebell.api import problems, tokens
from carebell.sites import access
from carebell.sites.models import Site

#: Ids are 64-bit: a larger one names nothing (and never reaches the database).
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Field(ge=1, le=100)]


class TokenAuth(HttpBearer):
    """`Authorization: Bearer cb_…`: the token, as `request.auth`."""

    openapi_bearerFormat = "carebell token"

    def __call__(self, request: HttpRequest):
        return tokens.authenticate(request)

    def authenticate(self, request, token):  # the base class's hook; __call__ answers
        return tokens.authenticate(request)


def user_of(request: HttpRequest):
    return request.auth.user


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text may not contain NUL characters.")
    if isinstance(value, dict):
        for item in value.values():
            _no_nul(item)
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class In(Schema):
    """A request body: unknown fields are refused, and no text holds NUL (which
    PostgreSQL cannot store)."""

    model_config = {"extra": "forbid"}

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data):
        return _no_nul(data)


class Out(BaseModel):
    """An answer read from a model's attributes. A plain pydantic model, not a ninja
    Schema: pydantic reads the attributes itself, where ninja's Schema wraps every
    object in a Python getter (most of a page's CPU)."""

    model_config = ConfigDict(from_attributes=True)


# --- Sites, objects, permissions ---------------------------------------------------


def note(request: HttpRequest, obj=None, *, site_id=None, object_type: str = "") -> None:
    """What the call's audit entry names (its object and site)."""
    if obj is not None:
        request.api_object_type = obj._meta.label_lower
        request.api_object_id = obj.pk or ""
    if object_type:
        request.api_object_type = object_type
    if site_id is not None:
        request.api_site_id = site_id


def site_for(request: HttpRequest, site_id: int, permission: str) -> Site:
    """The site `site_id` if the token's user may see it (else 404) and holds
    `permission` there (else 403)."""
    user = user_of(request)
    site = access.get_object_or_404_for(
        user, Site.objects.select_related("delivery"), "", pk=site_id
    )
    require_seen(request, permission)
    note(request, site_id=site.pk)
    return site


def require(request: HttpRequest, permission: str, site: Site) -> None:
    if not access.can(user_of(request), permission, site):
        raise problems.ApiProblem(403, "forbidden", f"Your role does not allow {permission} here.")


def require_seen(request: HttpRequest, permission: str) -> None:
    """`require` for an object just read through `access.scope`: `access.can` is
    seeing the site and holding the permission, and the scope was the first half,
    so only the permission is left to ask (of the user's cached permissions)."""
    if not user_of(request).has_perm(access.permission_name(permission)):
        raise problems.ApiProblem(403, "forbidden", f"Your role does not allow {permission} here.")


def object_for(request: HttpRequest, queryset: QuerySet, site_path: str, pk: int, permission: str):
    """The object `pk` of `queryset` if the user may see its site (else 404) and holds
    `permission` there (else 403)."""
    obj = access.get_object_or_404_for(user_of(request), queryset, site_path, pk=pk)
    require_seen(request, permission)
    note(request, obj, site_id=site_id_at(obj, site_path))
    return obj


def site_id_at(obj, site_path: str) -> int:
    """The id of the object's site, `site_path` away ("patient__site" → patient.site_id)."""
    *through, last = site_path.split("__") if site_path else ("pk",)
    value = obj
    for name in through:
        value = getattr(value, name)
    return getattr(value, f"{last}_id" if last != "pk" else "pk")


def visible(request: HttpRequest, queryset: QuerySet, site_path: str, permission: str) -> QuerySet:
    """The rows of the sites the user may see, if they hold `permission` (lists: no
    403, just no rows). `access.can` is seeing the site and holding the permission;
    the scope is the first half, asked once for all sites."""
    user = user_of(request)
    if not user.has_perm(access.permission_name(permission)):
        return queryset.none()
    return access.scope(queryset, user, site_path)


# --- Keyset pages ------------------------------------------------------------------


class PageQuery(Schema):
    limit: Limit = 50
    cursor: str = Field("", max_length=200, description="`next` of the previous page")


_PAGES: dict[type, type] = {}


def page_of(item: type) -> type:
    """The schema of a page of `item`: {items, next}."""
    if item not in _PAGES:
        name = item.__name__.removesuffix("Out") + "Page"
        _PAGES[item] = create_model(
            name,
            __base__=Out,
            items=(list[item], ...),
            next=(str | None, Field(None, description="cursor of the next page; null at the end")),
        )
    return _PAGES[item]


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"id:{pk}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        kind, _, value = raw.partition(":")
        pk = int(value)
        if kind == "id" and 0 <= pk < 2**63:
            return pk
    except ValueError:
        pass
    raise problems.ApiProblem(400, "bad-cursor", "This cursor is not one the API gave.")


def paginate(queryset: QuerySet, page: PageQuery) -> dict:
    """One page of `queryset` (of objects, or of dicts holding "id") by ascending id,
    after the cursor's id."""
    rows = queryset.order_by("pk")
    if page.cursor:
        rows = rows.filter(pk__gt=decode_cursor(page.cursor))
    items = list(rows[: page.limit + 1])
    more = len(items) > page.limit
    items = items[: page.limit]
    if not more:
        return {"items": items, "next": None}
    last = items[-1]
    last_id = last["id"] if isinstance(last, dict) else last.pk
    return {"items": items, "next": encode_cursor(last_id)}


PageParams = Query[PageQuery]


# --- ETags ---------------------------------------------------------------------------


def etag_of(schema: type[BaseModel], obj) -> str:
    return _etag(_json(schema, obj))


def _json(schema: type[BaseModel], obj) -> bytes:
    """`obj` as `schema` says, in JSON: validated and written by pydantic-core (the
    field order is the schema's, so the same object always gives the same bytes)."""
    return schema.model_validate(obj).model_dump_json().encode()


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def check_if_match(request: HttpRequest, schema: type[BaseModel], obj) -> None:
    """412 when If-Match names another version than the object's current one."""
    wanted = request.headers.get("If-Match")
    if wanted is None:
        return
    current = etag_of(schema, obj)
    tags = [t.strip().removeprefix("W/") for t in wanted.split(",")]
    if "*" not in tags and current not in tags:
        raise problems.ApiProblem(
            412, "precondition-failed",
            "The object changed since you read it (If-Match does not match its ETag).",
            headers={"ETag": current},
        )  # fmt: skip


def tagged(response: HttpResponse, schema: type[BaseModel], obj):
    """`obj` as the route's answer, its ETag set on `response`."""
    response["ETag"] = etag_of(schema, obj)
    return obj


def answer(schema: type[BaseModel], obj, *, status: int = 200, tag: bool = False, location=""):
    """The route's whole answer: `obj` as `schema` in JSON, validated once and
    written by pydantic-core (ninja would validate it again and write it with the
    json module), with its ETag (`tag`) and Location."""
    body = _json(schema, obj)
    response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    if tag:
        response["ETag"] = _etag(body)
    if location:
        response["Location"] = location
    return response
