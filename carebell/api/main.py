"""The REST API /api/v1: one NinjaAPI, its routers, and the OpenAPI 3.1 document
completed with what the door adds to every operation (problem responses, the
Idempotency-Key and If-Match headers, the rate limit)."""

from __future__ import annotations

from django.urls import re_path
from ninja import NinjaAPI

from carebell.api import door, problems
from carebell.api.common import TokenAuth
from carebell.api.openapi import complete

DESCRIPTION = """carebell's REST API: everything the staff app does, for the systems of a
practice or pharmacy.

* **Tokens**: create one in the staff app (account menu → API tokens) and send it as
  `Authorization: Bearer cb_…`. A token acts as its user: it sees that person's sites
  and may do what their role allows there, nothing more. An object of a site it may
  not see answers 404.
* **Errors** are RFC 9457 problem details (`application/problem+json`).
* **Lists** are keyset pages: `limit` (1–100) and the `next` cursor of the last page.
* **POST** takes an `Idempotency-Key`: the first answer is replayed for 24 hours; the
  same key with another body is refused (422).
* **Updates** answer with an `ETag`; send it back as `If-Match` to change only the
  version you read (412 otherwise).
* **Rate limit**: requests per token per minute; beyond it, 429 with `Retry-After`.
"""


class CarebellApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        return complete(
            super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        )

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            pattern.callback = door.guarded(pattern.callback, pattern.name or "")
        patterns.append(
            re_path(r"^.*$", door.guarded(door.not_found, "not-found"), name="not-found")
        )
        return patterns, app_name, namespace


api = CarebellApi(
    title="carebell",
    version="1",
    description=DESCRIPTION,
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url=None,
    openapi_extra={"info": {"license": {"name": "AGPL-3.0-or-later"}}},
)
problems.install(api)


def _routers():
    from carebell.api.routes import (
        appointments,
        consent,
        inbox,
        messaging,
        people,
        pharmacy,
        queue,
        sends,
        sites,
    )

    for module in (sites, people, consent, appointments, pharmacy, messaging, queue, sends, inbox):
        api.add_router("", module.router)


_routers()
