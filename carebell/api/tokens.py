"""API tokens: issued per user, shown once, stored as a SHA-256 digest, revoked by
their owner. A token acts as its user — the routes ask carebell.sites.access with
`token.user` — so it never does more than that person may.

`authenticate` reads `Authorization: Bearer cb_…`. The secret carries 256 bits of
randomness, so its digest is looked up by equality in the database: nothing is
compared byte by byte in Python, and a guess learns nothing from timing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import transaction
from django.db.models import Expression, Q, TextField
from django.http import HttpRequest
from django.utils import timezone

from carebell.api.models import ApiToken
from carebell.audit import trail
from carebell.prepared import Prepared
from carebell.sites import access

SECRET_PREFIX = "cb_"  # noqa: S105 (the marker of a carebell secret, not one)
#: Characters of the secret kept in clear, so a list can tell tokens apart.
SHOWN_CHARACTERS = 11
#: Last use is written at most this often per token, to keep reads cheap.
LAST_USE_EVERY = dt.timedelta(minutes=1)
_CACHED = "_carebell_api_token"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def issue(
    user, name: str, *, expires_at: dt.datetime | None = None, now: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret — the only time the secret exists in
    clear. `expires_at` None means the token lasts until revoked."""
    now = now or timezone.now()
    name = (name or "").strip()[:100]
    if not name:
        raise ValueError("A token needs a name.")
    if expires_at is not None and expires_at <= now:
        raise ValueError("A token must expire in the future.")
    secret = new_secret()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:SHOWN_CHARACTERS],
        secret_hash=digest(secret),
        created_at=now,
        expires_at=expires_at,
    )
    trail.record(user, "create", token, detail={"fields": ["name", "expires_at"]}, at=now)
    return token, secret


@transaction.atomic
def revoke(token: ApiToken, *, by, now: dt.datetime | None = None) -> bool:
    """Revoke `token` (from its next request on). False if it already was."""
    now = now or timezone.now()
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    if changed:
        token.revoked_at, token.revoked_by = now, by
        trail.record(by, "revoke", token, at=now)
    return bool(changed)


def bearer_secret(request: HttpRequest) -> str:
    """The secret of an `Authorization: Bearer …` header, or ""."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    secret = secret.strip()
    return secret if secret.startswith(SECRET_PREFIX) and len(secret) <= 200 else ""


def authenticate(request: HttpRequest, *, now: dt.datetime | None = None) -> ApiToken | None:
    """The usable token the request presents, or None (missing, unknown, revoked,
    expired, or its user deactivated). Remembered on the request, so the API's
    middleware and its routes look it up once."""
    if hasattr(request, _CACHED):
        return getattr(request, _CACHED)
    token = _lookup(request, now or timezone.now())
    setattr(request, _CACHED, token)
    return token


class _HeldPermissions(Expression):
    """The permissions the token's user holds — what django.contrib.auth's
    ModelBackend reads in two queries, described once in
    access.held_permissions_sql — as "app_label.codename" names joined by
    PERMISSION_SEPARATOR, in a subquery of the token's row correlated by its user."""

    output_field = TextField()

    def _names(self, compiler, connection) -> str:
        quote, token = compiler.quote_name_unless_alias, ApiToken._meta.db_table
        held = access.held_permissions_sql(f"{quote(token)}.{quote('user_id')}")
        return f"SELECT held.app_label || '.' || held.codename AS name FROM ({held}) held"

    def as_sql(self, compiler, connection):
        names = self._names(compiler, connection)
        return f"(SELECT string_agg(name, chr(31)) FROM ({names}) held)", []

    def as_sqlite(self, compiler, connection):
        names = self._names(compiler, connection)
        return f"(SELECT group_concat(name, char(31)) FROM ({names}) held)", []


#: What joins the names of _HeldPermissions (a control character: no name holds one).
PERMISSION_SEPARATOR = chr(31)

#: The token, its user and the user's permissions, read in one statement on every
#: request (no cache: a revoked token, a deactivated user or a role taken away is
#: refused from the next request on).
_TOKEN = Prepared(
    lambda secret_hash: (
        ApiToken.objects.select_related("user")
        .filter(secret_hash=secret_hash)
        .annotate(held_permissions=_HeldPermissions())
    ),
    "0" * 64,  # the stand-in digest
)


def _lookup(request: HttpRequest, now: dt.datetime) -> ApiToken | None:
    secret = bearer_secret(request)
    if not secret:
        return None
    found = _TOKEN.objects(digest(secret))
    token = found[0] if found else None
    if token is None or not token.is_usable(now):
        return None
    _load_permissions(token.user, token.held_permissions)
    _note_use(token, request, now)
    return token


def _load_permissions(user, held: str | None) -> None:
    """Fill the permission cache ModelBackend keeps on a user object (its
    `_perm_cache`, which has_perm reads) with what the token's query read, so
    `access.can` and the routes' checks ask nothing more of the database. A
    superuser holds every permission anyway."""
    if not user.is_superuser:
        user._perm_cache = set(held.split(PERMISSION_SEPARATOR)) if held else set()


def _note_use(token: ApiToken, request: HttpRequest, now: dt.datetime) -> None:
    if token.last_used_at is not None and now - token.last_used_at < LAST_USE_EVERY:
        return
    address = request.META.get("REMOTE_ADDR") or None
    # A conditional update: of several workers answering the same minute, one writes.
    stale = now - LAST_USE_EVERY
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk
    ).update(last_used_at=now, last_used_ip=address)
    token.last_used_at, token.last_used_ip = now, address


def tokens_of(user):
    """The tokens `user` holds, newest first (revoked and expired ones included)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-id")
