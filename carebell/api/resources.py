"""The shape the API's record routes share, written once: a keyset page of the
rows the token's user may see, one object with its ETag, a create through the
entry point (201 with Location), a change guarded by If-Match, and for some a
removal. A routes module declares a `Resource` — what differs, as data — and
`mount` adds its routes to the router, with the same names, paths, parameters and
documented answers as hand-written ones.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Query, Router, Schema

from carebell.api.common import (
    Id,
    PageParams,
    answer,
    check_if_match,
    decode_cursor,
    encode_cursor,
    etag_of,
    note,
    page_of,
    paginate,
    require_seen,
    site_for,
    site_id_at,
    user_of,
    visible,
)
from carebell.api.fields import apply
from carebell.prepared import Prepared
from carebell.sites import access


@dataclass(frozen=True, kw_only=True)
class Resource:
    name: str  # "patient": the routes are list_patients, get_patient, …
    plural: str
    #: Where they are listed and added: "/patients", "/patients/{patient_id}/contacts".
    collection: str
    item: str  # where one is read and changed: "/patients/{patient_id}"
    model: type[Model]
    out: type
    create: type
    change: type
    view: str  # the permission to read, at the object's site
    edit: str  # … and to add or change
    save: Callable  # the entry point: save(obj, by=user)
    new: Callable[[Any], Model]  # new(owner): the object before the body is applied
    #: What a new one belongs to: owner(request, id, permission), the id from the
    #: body's `owner_id` field — or, for a nested collection, from its path.
    owner: Callable[[HttpRequest, int, str], Any] = site_for
    owner_id: str = "site_id"
    #: Nested: the field of the model naming the owner, to list its rows.
    owner_link: str = ""
    site_path: str = "site"
    #: select_related of one object: what its entry point reads of it (its site's
    #: id, on the row itself, is all the access check and the answer need).
    related: tuple[str, ...] = ("site",)
    filters: type[Schema] | None = None
    #: A filter whose lookup is not its own name ("starts_from": "starts_at__gte").
    lookups: Mapping[str, str] = field(default_factory=dict)
    #: fill(obj, body, creating=…): set the body on the object (default: its fields).
    fill: Callable = apply
    remove: Callable | None = None  # remove(obj, by=user); None: no DELETE
    #: The answer to a create or change when it says more than the object.
    saved: type | None = None
    saved_body: Callable[[Any, Any], Any] | None = None  # (obj, what save returned)
    summaries: Mapping[str, str] = field(default_factory=dict)

    # --- what the routes do ------------------------------------------------------

    def one(self, request: HttpRequest, pk: int, permission: str, related=None):
        """The object `pk` if the user may see its site (else 404) and holds
        `permission` there (else 403): common.object_for, its SQL written once.
        `related`: what to select_related instead of the resource's `related`."""
        user = user_of(request)
        found = _reader(self, bool(user.is_superuser), related).objects(pk, user.pk)
        if len(found) != 1:
            raise Http404
        require_seen(request, permission)
        note(request, found[0], site_id=site_id_at(found[0], self.site_path))
        return found[0]

    def listing(self, request: HttpRequest, page, filters=None, owner_pk=None) -> HttpResponse:
        if self.owner_link:
            owner = self.owner(request, owner_pk, self.view)
            rows = self.model.objects.filter(**{self.owner_link: owner})
        else:
            applied = [(n, v) for n, v in (filters if filters is not None else ()) if v]
            note(request, object_type=self.model._meta.label_lower)
            user = user_of(request)
            if all(_is_id(value) for _name, value in applied) and user.has_perm(
                access.permission_name(self.view)
            ):
                return answer(page_of(self.out), self._page(user, page, applied))
            rows = visible(request, self.model.objects.all(), self.site_path, self.view)
            for name, value in applied:
                rows = rows.filter(**{self.lookups.get(name, name): value})
        # Rows as dicts of the answer's fields: pydantic reads them as it reads an
        # object, without a model instance built per row first.
        return answer(page_of(self.out), paginate(rows.values(*self.out.model_fields), page))

    def _page(self, user, page, applied: list[tuple[str, int]]) -> dict:
        """`paginate` of `visible` rows filtered by ids (the common list), its SQL
        written once per shape: the same query, as dicts of the answer's fields."""
        after = decode_cursor(page.cursor) if page.cursor else 0  # ids start at 1
        names = tuple(self.lookups.get(n, n) for n, _ in applied)
        lister = _lister(self, bool(user.is_superuser), names, page.limit)
        items = lister.dicts(after, user.pk, *(value for _, value in applied))
        more = len(items) > page.limit
        items = items[: page.limit]
        return {"items": items, "next": encode_cursor(items[-1]["id"]) if more else None}

    def read(self, request: HttpRequest, pk: int) -> HttpResponse:
        return answer(self.out, self.one(request, pk, self.view), tag=True)

    def add(self, request: HttpRequest, body, owner_pk=None) -> HttpResponse:
        pk = owner_pk if self.owner_link else getattr(body, self.owner_id)
        obj = self.new(self.owner(request, pk, self.edit))
        self.fill(obj, body, creating=True)
        result = self.save(obj, by=user_of(request))
        location = "/api/v1" + self.item.replace("{" + _params(self.item)[0] + "}", str(obj.pk))
        return self._answer(obj, result, status=201, location=location)

    def alter(self, request: HttpRequest, pk: int, body) -> HttpResponse:
        obj = self.one(request, pk, self.edit)
        check_if_match(request, self.out, obj)
        self.fill(obj, body, creating=False)
        return self._answer(obj, self.save(obj, by=user_of(request)))

    def delete(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.one(request, pk, self.edit)
        check_if_match(request, self.out, obj)
        self.remove(obj, by=user_of(request))
        return HttpResponse(status=204)

    def _answer(self, obj, result, *, status: int = 200, location: str = "") -> HttpResponse:
        if self.saved is None:
            return answer(self.out, obj, status=status, tag=True, location=location)
        body = self.saved_body(obj, result)
        response = answer(self.saved, body, status=status, location=location)
        response["ETag"] = etag_of(self.out, obj)
        return response


_READERS: dict[tuple[str, bool, tuple], Prepared] = {}


def _reader(resource: Resource, superuser: bool, related=None) -> Prepared:
    """The read of one object of `resource` within access.scope — for a superuser,
    or for a staff member (whose id stands in): the scope's two shapes."""
    related = resource.related if related is None else tuple(related)
    place = (resource.item, superuser, related)
    if place not in _READERS:
        model, site_path = resource.model, resource.site_path

        def build(pk, user_id):
            rows = model.objects.select_related(*related).filter(pk=pk)
            stand_in = get_user_model()(pk=user_id, is_active=True, is_superuser=superuser)
            return access.scope(rows, stand_in, site_path)

        _READERS[place] = Prepared(build, -101, None if superuser else -103)
    return _READERS[place]


#: List shapes prepared so far (resource, superuser, filters, limit), the oldest
#: forgotten past this many.
_LISTERS_KEPT = 256
_LISTERS: dict[tuple, Prepared] = {}


def _lister(resource: Resource, superuser: bool, lookups: tuple[str, ...], limit: int):
    """A page of `resource` within access.scope, after an id, filtered by id-valued
    `lookups`: for a superuser or a staff member (whose id stands in)."""
    place = (resource.item, superuser, lookups, limit)
    found = _LISTERS.get(place)
    if found is None:
        model, site_path = resource.model, resource.site_path
        fields = list(resource.out.model_fields)

        def build(after, user_id, *values):
            stand_in = get_user_model()(pk=user_id, is_active=True, is_superuser=superuser)
            rows = access.scope(model.objects.all(), stand_in, site_path)
            for lookup, value in zip(lookups, values, strict=True):
                rows = rows.filter(**{lookup: value})  # one filter() each, as listing's
            return rows.filter(pk__gt=after).order_by("pk").values(*fields)[: limit + 1]

        stand_ins = [-201, None if superuser else -203, *(-211 - i for i in range(len(lookups)))]
        if len(_LISTERS) >= _LISTERS_KEPT:
            _LISTERS.pop(next(iter(_LISTERS)))
        found = _LISTERS[place] = Prepared(build, *stand_ins)
    return found


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def mount(router: Router, resource: Resource, module: str) -> None:
    """Add the resource's routes to `router`, named as if written in `module` (the
    OpenAPI operation ids and URL names come from a route's module and name)."""
    r, route = resource, _Routes(module)
    summary = {**_summaries(r), **r.summaries}
    (key,) = _params(r.item)
    if r.owner_link:
        (owner_key,) = _params(r.collection)
        owner, filters = [(owner_key, Id)], []

        def listed(request, page, **path):
            return r.listing(request, page, owner_pk=path[owner_key])

        def added(request, body, **path):
            return r.add(request, body, owner_pk=path[owner_key])
    else:
        owner = []
        filters = [("filters", Query[r.filters])] if r.filters else []

        def listed(request, page, filters=None):
            return r.listing(request, page, filters)

        def added(request, body):
            return r.add(request, body)

    def read(request, **path):
        return r.read(request, path[key])

    def altered(request, body, **path):
        return r.alter(request, path[key], body)

    def removed(request, **path):
        return r.delete(request, path[key])

    page, answered = page_of(r.out), r.saved or r.out
    listed = route(f"list_{r.plural}", [*owner, ("page", PageParams), *filters], listed)
    router.get(r.collection, response=page, summary=summary["list"])(listed)
    added = route(f"create_{r.name}", [*owner, ("body", r.create)], added)
    router.post(r.collection, response={201: answered}, summary=summary["create"])(added)
    read = route(f"get_{r.name}", [(key, Id)], read)
    router.get(r.item, response=r.out, summary=summary["get"])(read)
    altered = route(f"change_{r.name}", [(key, Id), ("body", r.change)], altered)
    router.patch(r.item, response=answered, summary=summary["change"])(altered)
    if r.remove is not None:
        removed = route(f"delete_{r.name}", [(key, Id)], removed)
        router.delete(r.item, response={204: None}, summary=summary["delete"])(removed)


def _summaries(r: Resource) -> dict[str, str]:
    noun = r.name.replace("_", " ")
    a = "an" if noun[0] in "aeiou" else "a"
    return {
        "list": r.plural.replace("_", " ").capitalize(),
        "get": f"One {noun}",
        "create": f"Add {a} {noun} ({r.edit})",
        "change": f"Change {a} {noun} ({r.edit})",
        "delete": f"Remove {a} {noun}",
    }


class _Routes:
    """Route functions with the signature ninja reads (their parameters and types),
    named as the module's own."""

    def __init__(self, module: str):
        self.module = module

    def __call__(self, name: str, params: list[tuple[str, Any]], run: Callable):
        def view(request: HttpRequest, **values):  # ninja passes the parameters by name
            return run(request, **values)

        view.__name__ = view.__qualname__ = name
        view.__module__ = self.module
        view.__signature__ = inspect.Signature(
            [
                inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                *(
                    inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=kind)
                    for n, kind in params
                ),
            ]
        )
        return view
