"""Signing in (a password, then a one-time code for those who hold an
authenticator), setting up that second factor, changing one's password, signing
out, and choosing the site to work on."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import segno
from django.contrib import auth, messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from carebell.audit import trail
from carebell.web.sign_in import lockout_message
from carebell.web.staff import guard
from carebell.web.staff.forms import CodeForm, SignInForm

#: The user who gave a right password and still owes a code.
PENDING_KEY = "staff_pending_user"
DEVICE_NAME = "authenticator"
#: How long a right password waits for its code before the sign-in starts over.
PENDING_SECONDS = 5 * 60


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed and target.startswith("/") else reverse("staff:home")


@guard.public
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and not guard.needs_code(request.user):
        return HttpResponseRedirect(_next(request))
    form = SignInForm(guard.posted(request))
    if request.method == "POST" and form.is_valid():
        user = auth.authenticate(
            request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
        )
        if getattr(request, "axes_locked_out", False):
            return render_locked_out(request, form)
        if user is None:
            form.add_error(None, _("That user name and password do not match an account."))
        elif user_has_device(user):
            request.session[PENDING_KEY] = {
                "id": user.pk, "backend": user.backend, "at": timezone.now().timestamp()
            }  # fmt: skip
            query = urlencode({"next": _next(request)}, safe="/")
            return HttpResponseRedirect(f"{reverse('staff:sign-in-code')}?{query}")
        else:
            auth.login(request, user)
            return HttpResponseRedirect(_next(request))
    return render(request, "staff/sign_in.html", {"form": form, "next": _next(request)})


def render_locked_out(request: HttpRequest, form=None) -> HttpResponse:
    """The sign-in page, refused by the throttle: it says why and for how long."""
    context = {
        "form": form or SignInForm(initial={"username": request.POST.get("username", "")}),
        "next": _next(request),
        "lockout_message": lockout_message(),
    }
    return render(request, "staff/sign_in.html", context, status=429)


def _pending_user(request: HttpRequest):
    if request.user.is_authenticated:
        return request.user
    pending = request.session.get(PENDING_KEY) or {}
    if timezone.now().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = auth.get_user_model()._default_manager.filter(pk=pending.get("id")).first()
    if user is not None:
        user.backend = pending.get("backend")
    return user if user is not None and user.is_active else None


@guard.public
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the authenticator the user set up."""
    user = _pending_user(request)
    if user is None:
        return redirect("staff:sign-in")
    form = CodeForm(guard.posted(request))
    if request.method == "POST" and form.is_valid():
        device = _verified_device(user, form.cleaned_data["code"])
        if device is None:
            form.add_error("code", _("That code is not right, or has expired. Try the next one."))
            trail.record(user, trail.SIGN_IN_FAILED, detail={"step": "code"})
        else:
            request.session.pop(PENDING_KEY, None)
            if not request.user.is_authenticated:
                auth.login(request, user)
            otp_login(request, device)
            return HttpResponseRedirect(_next(request))
    return render(request, "staff/sign_in_code.html", {"form": form, "next": _next(request)})


def _verified_device(user, code: str):
    for device in devices_for_user(user, confirmed=True):
        if device.verify_token(code):
            return device
    return None


@guard.requires(guard.SIGNED_IN, allow_without_second_factor=True)
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator: a QR code and the secret, confirmed with a code."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None:
        return render(request, "staff/two_factor.html", {"confirmed": confirmed})
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    form = CodeForm(guard.posted(request))
    if request.method == "POST" and form.is_valid():
        if not device.verify_is_allowed()[0]:
            form.add_error("code", _("Too many wrong codes. Wait a few seconds and try again."))
        elif device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            trail.record(user, "change", object_type="otp_totp.totpdevice",
                         object_id=str(device.pk), detail={"fields": ["confirmed"]})  # fmt: skip
            messages.success(request, _("Two-factor sign-in is set up."))
            return redirect("staff:home")
        else:
            form.add_error("code", _("That code is not right. Check the phone's clock and retry."))
    context = {
        "form": form,
        "qr": segno.make(device.config_url, error="m").svg_inline(
            scale=5, border=4, omitsize=True, light="#fff"
        ),
        "secret": _grouped(base64.b32encode(device.bin_key).decode()),
        "required": guard.must_set_up_two_factor(user),
    }
    return render(request, "staff/two_factor.html", context)


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@guard.requires(guard.SIGNED_IN)
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, guard.posted(request))
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        trail.record(user, "change", user, detail={"fields": ["password"]})
        messages.success(request, _("Your password was changed."))
        return redirect("staff:home")
    return render(request, "staff/password_change.html", {"form": form})


@guard.public
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    auth.logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("staff:sign-in")


@guard.requires(guard.SIGNED_IN)
@require_POST
def choose_site(request: HttpRequest) -> HttpResponse:
    site = guard.choose_site(request, request.POST.get("site"))
    if site is None:
        messages.error(request, _("That site is not one of yours."))
    return HttpResponseRedirect(_next(request))
