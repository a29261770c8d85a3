"""Signing in: django-axes refuses an account or an address after
CAREBELL_LOGIN_FAILURE_LIMIT failures for CAREBELL_LOGIN_COOLOFF_MINUTES; this module
tells the person so on the sign-in page, says where a sign-in came from, and writes
every failure to the audit log.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from carebell.audit import trail


def client_address(request: HttpRequest) -> str:
    """The address a request came from: the connecting peer or, behind a trusted proxy
    (CAREBELL_BEHIND_PROXY), the last X-Forwarded-For entry, the one the proxy itself
    appended (entries before it are whatever the client claimed)."""
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if _is_address(forwarded):
            return forwarded
    peer = request.META.get("REMOTE_ADDR", "")
    return peer if _is_address(peer) else ""


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def lockout_message() -> str:
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return ngettext(
        "Too many failed sign-in attempts. Try again in %(minutes)d minute.",
        "Too many failed sign-in attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """django-axes' lockout answer: the sign-in page again, empty, saying plainly why
    the sign-in was refused and for how long (429)."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.namespace == "staff":
        from carebell.web.staff.views.account import render_locked_out

        return render_locked_out(request)
    from django.contrib import admin
    from django.contrib.admin.forms import AdminAuthenticationForm

    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "form": AdminAuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next") or reverse("admin:index"),
        "lockout_message": lockout_message(),
    }
    return render(request, "web/locked_out.html", context, status=429)


def audit_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    """Every refused sign-in goes to the audit log (connected to Django's
    user_login_failed, after django-axes has counted it)."""
    username = str((credentials or {}).get(get_user_model().USERNAME_FIELD) or "")
    address = ""
    locked = False
    if request is not None:
        address = getattr(request, "axes_ip_address", None) or client_address(request)
        locked = bool(getattr(request, "axes_locked_out", False))
    user_id = (
        get_user_model()
        ._default_manager.filter(**{get_user_model().USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )
    trail.record_sign_in_failure(username, address, locked_out=locked, user_id=user_id)
