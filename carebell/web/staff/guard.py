"""Every staff page passes here: `@requires(permission)` signs the person in (and
through a second factor when they hold one, or must), resolves the site they are
working on, checks the permission there with the one access rule
(carebell.sites.access), and shows times in that site's zone.

The site is the switcher's choice kept in the session, validated on every request
against the sites the user may see; a stale or forged choice falls back to the first.

Background polls (`requires(…, idle=…)`) first try `quick_grant`: the same checks
asked fresh in one statement, which answers "let through, at this site" only when
every check plainly passes; in any other case the poll takes the full guard above,
so whatever refuses a page refuses a poll, with the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_otp import DEVICE_ID_SESSION_KEY, device_classes, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from carebell.sites import access
from carebell.sites.models import DeliverySettings, Site
from carebell.sites.roles import SYSTEM_ADMINISTRATOR
from carebell.sql import is_row_id

SITE_SESSION_KEY = "staff_site_id"

#: `requires(SIGNED_IN)`: any signed-in staff member with at least one site.
SIGNED_IN = "signed_in"


def current_site(request: HttpRequest) -> Site | None:
    """The site the user works on: the session's choice if still theirs, else their first."""
    sites = access.sites_for(request.user).select_related("delivery")
    chosen = request.session.get(SITE_SESSION_KEY)
    site = sites.filter(pk=chosen).first() if isinstance(chosen, int) else None
    return site or sites.first()


def choose_site(request: HttpRequest, site_id: object) -> Site | None:
    """Keep `site_id` as the working site if the user may see it."""
    try:
        site = access.sites_for(request.user).filter(pk=int(site_id)).first()
    except (TypeError, ValueError):
        site = None
    if site is not None:
        request.session[SITE_SESSION_KEY] = site.pk
    return site


def must_set_up_two_factor(user) -> bool:
    """A System Administrator of a site that requires a second factor for its
    administrators, who has no confirmed device yet."""
    if not _administrator(user).exists():
        return False
    return _second_factor_required(user).exists() and not user_has_device(user)


def _administrator(user) -> QuerySet:
    return user.groups.filter(name=SYSTEM_ADMINISTRATOR)


def _second_factor_required(user) -> QuerySet:
    """The delivery settings of the user's sites that require their administrators
    to hold a second factor."""
    return DeliverySettings.objects.filter(
        site__in=access.sites_for(user), require_two_factor_for_admins=True
    )


def needs_code(user) -> bool:
    """A user with a confirmed device who has not given a code in this session."""
    return user_has_device(user) and not user.is_verified()


def sign_in_redirect(request: HttpRequest) -> HttpResponseRedirect:
    query = urlencode({"next": request.get_full_path()}, safe="/")
    return HttpResponseRedirect(f"{reverse('staff:sign-in')}?{query}")


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Where a request must go before any staff page, or None to let it through."""
    user = request.user
    if isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return sign_in_redirect(request)
    if needs_code(user):
        return HttpResponseRedirect(reverse("staff:sign-in-code"))
    if must_set_up_two_factor(user):
        return HttpResponseRedirect(reverse("staff:two-factor"))
    return None


def requires(
    permission: str,
    *,
    allow_without_second_factor: bool = False,
    idle: Callable[..., bool] | None = None,
) -> Callable:
    """Decorate a staff view: it runs only for a signed-in user who holds `permission`
    (a carebell role permission, or SIGNED_IN) on the current site, passed to the view
    as `request.site`. A user without any site gets 404; one without the permission
    gets 403 (which names nothing of the site).

    `idle(request, site_id, *args, **kwargs)`, for a GET poll: True when nothing
    changed at that site for the poll's client, answered 204 without running the
    view, once `quick_grant` let the request through at `site_id`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if idle is not None and request.method == "GET":
                site_id = quick_grant(request, permission)
                if site_id is not None and idle(request, site_id, *args, **kwargs):
                    return HttpResponse(status=204)
            refusal = _refusal(request)
            if refusal is not None and not (
                allow_without_second_factor and request.user.is_authenticated
            ):
                return refusal
            site = current_site(request)
            if site is None and request.user.is_superuser:
                return HttpResponseRedirect(reverse("admin:index"))  # no site yet: set one up
            if site is None:
                raise Http404
            # current_site took the site from the ones the user may see.
            if permission != SIGNED_IN and not access.holds(request.user, permission):
                raise PermissionDenied
            request.site = site
            with timezone.override(site.zone):
                return view(request, *args, **kwargs)

        guarded.staff_permission = permission
        return guarded

    return decorate


# --- the polls' one-statement guard -------------------------------------------------
#
# An open inbox page polls every few seconds; after the session, the full guard asks
# its questions in seven statements (the user, the device twice, the administrator
# group, the site, the permissions twice), built by the ORM, which cost a poll most of
# its time. `quick_grant` asks the same questions, fresh, in one statement put
# together once from the full guard's own querysets and the access rule's SQL
# (_grant_sql), so nothing cached can outlive a change of password, role, membership or
# device, and nothing is written (a poll stays passive, carebell.web.sessions). It only
# ever grants: a request it is not sure of (a superuser, several sites and no choice
# made, a device id it cannot read, a session hash of an older secret, anything that
# would refuse) goes the full way, which refuses it exactly as it refuses a page and
# tidies the session as Django and django-otp do.

#: django-axes adds no permission of its own; with any other backend, a backend's
#: answer (or its veto) could differ from the statement's, so polls go the full way.
_PLAIN_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]


def quick_grant(request: HttpRequest, permission: str) -> int | None:
    """The id of the site the full guard would let this request through at, with
    `permission` held there; None when the full guard must decide."""
    if permission == SIGNED_IN or not _quick_grant_applies():
        return None
    session = request.session
    user_id = _session_user(session)
    device_id = _device_id(session.get(DEVICE_ID_SESSION_KEY))
    chosen = session.get(SITE_SESSION_KEY)
    if user_id is None or device_id is False:
        return None
    if chosen is not None and not is_row_id(chosen):
        return None  # current_site's own reading of an odd choice (even True)
    app_label, codename = access.permission_name(permission).split(".", 1)
    with connection.cursor() as cursor:
        cursor.execute(_grant_sql(chosen is not None), _grant_params(
            user_id, device_id, chosen, app_label, codename
        ))  # fmt: skip
        row = cursor.fetchone()
    if row is None:
        return None  # no such user
    password, active, superuser, has_device, verified, administrator, required = row[:7]
    sites, site_id, holds = row[7:]
    if not active or superuser or not _same_password(session, user_id, password):
        return None  # sign-in again (or, for a superuser, every site to choose from)
    if not verified and (has_device or device_id is not None):
        return None  # a code to give, or a device id django-otp will drop
    if administrator and required and not has_device:
        return None  # a second factor to set up
    if not holds or not site_id or (chosen is None and sites != 1):
        return None  # no permission, no site, or the first of several to pick
    return site_id


#: The backend that signs staff in (axes only vets the password beforehand).
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _session_user(session) -> int | None:
    """The user the session was signed in as, read as django.contrib.auth reads it
    (whose `get_user` then loads them through ModelBackend)."""
    if session.get(auth.BACKEND_SESSION_KEY) != _MODEL_BACKEND:
        return None
    try:
        user_id = auth.get_user_model()._meta.pk.to_python(session[auth.SESSION_KEY])
    except (KeyError, ValidationError):
        return None
    return user_id if is_row_id(user_id) else None


def _same_password(session, user_id: int, password: str) -> bool:
    """`auth.get_user`'s check that the password did not change since sign-in, with
    the current secret (a session signed with an older one goes the full way, which
    renews its hash or ends it)."""
    user = auth.get_user_model()(pk=user_id, password=password)
    signed = session.get(auth.HASH_SESSION_KEY) or ""
    return bool(signed) and constant_time_compare(signed, user.get_session_auth_hash())


def _quick_grant_applies() -> bool:
    """The statement knows django-otp's TOTP devices only, and ModelBackend's rules."""
    return list(settings.AUTHENTICATION_BACKENDS) == _PLAIN_BACKENDS and _only_totp()


@cache
def _only_totp() -> bool:
    return list(device_classes()) == [TOTPDevice]


def _device_id(persistent_id) -> int | bool | None:
    """The TOTP device the session was verified with (None: not verified), or False
    for an id only django-otp itself can read."""
    if persistent_id is None:
        return None
    label, _, pk = str(persistent_id).rpartition("/")
    if label != TOTPDevice.model_label() or not pk.isdigit() or not is_row_id(int(pk)):
        return False
    return int(pk)


#: Stand-ins the statement's ORM-written parts are built for: their places are
#: where _grant_params puts the user's id and the session's device id.
_USER, _DEVICE = -1, -2


@cache
def _grant_sql(chosen: bool) -> str:
    """The questions the full guard asks, written as it asks them where the ORM can
    write them — sites (access.granted_site_ids), devices (django-otp, TOTP only),
    the second-factor rule (must_set_up_two_factor) — and the permission as
    access.held_permissions_sql describes it; quick_grant decides."""
    q = connection.ops.quote_name
    user_model = auth.get_user_model()
    user = user_model(pk=_USER, is_active=True, is_superuser=False)  # as let through
    devices = TOTPDevice.objects.devices_for_user(user, confirmed=True).values("pk")
    has_device = _orm_sql(devices, _USER)
    verified = _orm_sql(devices.filter(pk=_DEVICE), _USER, _DEVICE)
    administrator = _orm_sql(_administrator(user).values("pk"), _USER, SYSTEM_ADMINISTRATOR)
    required = _orm_sql(_second_factor_required(user).values("pk"), _USER)
    granted = _orm_sql(access.granted_site_ids(user), _USER)
    site = (
        f"(SELECT site_id FROM ({granted}) granted WHERE site_id = %s)"
        if chosen
        else f"(SELECT MIN(site_id) FROM ({granted}) granted)"
    )
    fields = ", ".join(
        "u." + q(user_model._meta.get_field(name).column)
        for name in ("password", "is_active", "is_superuser")
    )
    return (
        f"SELECT {fields},"
        f" EXISTS ({has_device}), EXISTS ({verified}),"
        f" EXISTS ({administrator}), EXISTS ({required}),"
        f" (SELECT COUNT(*) FROM ({granted}) granted), {site},"
        f" EXISTS (SELECT 1 FROM ({access.held_permissions_sql('u.id')}) held"
        "  WHERE held.app_label = %s AND held.codename = %s)"
        f" FROM {q(user_model._meta.db_table)} u WHERE u.id = %s"
    )


def _orm_sql(queryset: QuerySet, *params) -> str:
    """The SQL the ORM writes for `queryset`, which must take `params` (the order
    _grant_params gives the real values in)."""
    sql, built = queryset.query.sql_with_params()
    if built != params:
        raise RuntimeError(f"{sql!r} takes {built!r}, not {params!r}: update _grant_params")
    return sql


def _grant_params(user_id, device_id, chosen, app_label, codename) -> list:
    site = [user_id, chosen] if chosen is not None else [user_id]
    return [
        user_id,
        user_id, device_id,
        user_id, SYSTEM_ADMINISTRATOR,
        user_id,
        user_id, *site,
        app_label, codename,
        user_id,
    ]  # fmt: skip


def public(view: Callable) -> Callable:
    """Mark a staff view that anyone may open (the sign-in steps)."""
    view.staff_permission = None
    view.staff_public = True
    return view


def posted(request: HttpRequest):
    """The form data of a POST (even an empty one, so it gets its errors), else None."""
    return request.POST if request.method == "POST" else None


def can(request: HttpRequest, permission: str) -> bool:
    return access.can(request.user, permission, getattr(request, "site", None))
