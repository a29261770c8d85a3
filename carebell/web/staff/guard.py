"""Every staff page passes here: `@requires(permission)` signs the person in (and
through a second factor when they hold one, or must), resolves the site they are
working on, checks the permission there with the one access rule
(carebell.sites.access), and shows times in that site's zone.

The site is the switcher's choice kept in the session, validated on every request
against the sites the user may see; a stale or forged choice falls back to the first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django_otp import user_has_device

from carebell.sites import access
from carebell.sites.models import DeliverySettings, Site
from carebell.sites.roles import SYSTEM_ADMINISTRATOR

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
    if not user.groups.filter(name=SYSTEM_ADMINISTRATOR).exists():
        return False
    required = DeliverySettings.objects.filter(
        site__in=access.sites_for(user), require_two_factor_for_admins=True
    )
    return required.exists() and not user_has_device(user)


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


def requires(permission: str, *, allow_without_second_factor: bool = False) -> Callable:
    """Decorate a staff view: it runs only for a signed-in user who holds `permission`
    (a carebell role permission, or SIGNED_IN) on the current site, passed to the view
    as `request.site`. A user without any site gets 404; one without the permission
    gets 403 (which names nothing of the site)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
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
