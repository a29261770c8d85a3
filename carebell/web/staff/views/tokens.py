"""API tokens in the staff app: every signed-in staff member lists, creates and
revokes their own. A new token's secret is shown once, on the page that answers the
creation (never stored in clear, never put in a redirect or the session). The API
reference page lives here too, for the same people."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ninja
from csp.decorators import csp_update
from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carebell.api import tokens
from carebell.audit import trail
from carebell.web.staff import guard

EXPIRY_CHOICES = [
    ("30", gettext_lazy("In 30 days")),
    ("90", gettext_lazy("In 90 days")),
    ("365", gettext_lazy("In a year")),
    ("", gettext_lazy("Never (until revoked)")),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What the token is for, e.g. “practice management sync”."),
    )
    expires = forms.ChoiceField(
        label=gettext_lazy("Expires"), choices=EXPIRY_CHOICES, required=False, initial="90"
    )

    def expires_at(self, now: dt.datetime) -> dt.datetime | None:
        days = self.cleaned_data.get("expires")
        return now + dt.timedelta(days=int(days)) if days else None


def _page(request: HttpRequest, form: TokenForm, secret: str = "", status: int = 200):
    trail.record(request.user, "list", object_type="api.apitoken", site_id=request.site.pk)
    context = {
        "form": form,
        "tokens": list(tokens.tokens_of(request.user)[:200]),
        "secret": secret,
        "now": timezone.now(),
        "reference_url": reverse("staff:api-reference"),
    }
    response = render(request, "staff/tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


@guard.requires(guard.SIGNED_IN)
def token_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    now = timezone.now()
    _token, secret = tokens.issue(
        request.user, form.cleaned_data["name"], expires_at=form.expires_at(now), now=now
    )
    return _page(request, TokenForm(), secret=secret, status=201)


@guard.requires(guard.SIGNED_IN)
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    # Another person's token does not exist here: 404, whoever's it is.
    token = get_object_or_404(tokens.tokens_of(request.user), pk=token_id)
    if tokens.revoke(token, by=request.user):
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    else:
        messages.info(request, _("That token was already revoked."))
    return redirect("staff:api-tokens")


# The reference page: ninja's Swagger UI files, served from the installed package
# (no CDN is reachable, and ninja is not an installed Django app here).
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-init.js": "text/javascript",
}
ASSET_DIR = Path(ninja.__file__).parent / "static" / "ninja"


@guard.requires(guard.SIGNED_IN)
# Swagger UI draws its icons as data: images; scripts stay 'self' only.
@csp_update({"img-src": ["data:"]})
def api_reference(request: HttpRequest) -> HttpResponse:
    trail.record(request.user, "view", object_type="api.reference", site_id=request.site.pk)
    settings = {"url": "/api/v1/openapi.json", "layout": "BaseLayout", "deepLinking": True}
    return render(request, "staff/api_reference.html", {"swagger_settings": settings})


@guard.requires(guard.SIGNED_IN)
def api_reference_asset(request: HttpRequest, name: str) -> HttpResponse:
    if name not in ASSETS:
        raise Http404
    response = FileResponse((ASSET_DIR / name).open("rb"), content_type=ASSETS[name])
    response["Cache-Control"] = "private, max-age=86400"
    return response
