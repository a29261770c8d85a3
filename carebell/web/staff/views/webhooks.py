"""Webhook endpoints of the current site (SPEC §9): the list, adding one, its page
with its settings, secret rotation and delivery log (with a resend button). Every
page needs manage_integrations; an endpoint or delivery of another site answers 404.
Changes go through carebell.outbound.endpoints. A secret is shown once, on the page
the creation or rotation leads to, and never again."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.outbound import endpoints
from carebell.outbound.models import (
    DeliveryAttemptLog,
    EventDelivery,
    EventType,
    WebhookEndpoint,
)
from carebell.outbound.targets import MAX_URL_LENGTH
from carebell.sites import access
from carebell.web.staff import guard
from carebell.web.staff.cursors import make_cursor, parse_cursor

PERMISSION = "manage_integrations"
LOG_PAGE = 50
_SHOWN_ONCE = "webhook_secret_once"


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=gettext_lazy("URL"),
        max_length=MAX_URL_LENGTH,
        help_text=gettext_lazy(
            "Where carebell POSTs the events, e.g. https://pms.example.org/hooks."
        ),
    )
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, max_length=endpoints.MAX_DESCRIPTION
    )
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("Choose at least one event.")},
    )
    enabled = forms.BooleanField(label=gettext_lazy("Enabled"), required=False, initial=True)


def _endpoints(request: HttpRequest):
    mine = WebhookEndpoint.objects.filter(site=request.site)
    return access.scope(mine, request.user, "site")


def _endpoint(request: HttpRequest, endpoint_id: int) -> WebhookEndpoint:
    return access.get_object_or_404_for(request.user, _endpoints(request), "site", pk=endpoint_id)


@guard.requires(PERMISSION)
def webhook_list(request: HttpRequest) -> HttpResponse:
    rows = list(_endpoints(request).order_by("id"))
    trail.record(request.user, "list", object_type="outbound.webhookendpoint",
                 site_id=request.site.pk)  # fmt: skip
    return render(request, "staff/webhook_list.html", {"endpoints": rows})


@guard.requires(PERMISSION)
def webhook_new(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(guard.posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = endpoints.create_endpoint(
                request.site,
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                description=form.cleaned_data["description"],
                by=request.user,
            )
        except ValidationError as error:
            _attach(form, error)
        else:
            if not form.cleaned_data["enabled"]:
                endpoints.disable_endpoint(endpoint, by=request.user)
            request.session[_SHOWN_ONCE] = {"id": endpoint.pk, "secret": secret}
            messages.success(request, _("The endpoint was added."))
            return redirect("staff:webhook", endpoint_id=endpoint.pk)
    return render(request, "staff/webhook_edit.html", {"form": form, "endpoint": None})


@guard.requires(PERMISSION)
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    }
    form = EndpointForm(guard.posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            endpoints.update_endpoint(endpoint, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            _attach(form, error)
            endpoint.refresh_from_db()
        else:
            messages.success(request, _("The endpoint was saved."))
            return redirect("staff:webhook", endpoint_id=endpoint.pk)
    trail.record(request.user, "view", endpoint)
    context = {
        "endpoint": endpoint,
        "form": form,
        "secret": _secret_once(request, endpoint),
        **_log_page(request, endpoint),
    }
    return render(request, "staff/webhook_edit.html", context)


@guard.requires(PERMISSION)
@require_POST
def webhook_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    secret = endpoints.rotate_secret(endpoint, by=request.user)
    request.session[_SHOWN_ONCE] = {"id": endpoint.pk, "secret": secret}
    messages.success(
        request, _("A new secret was made. The previous one still signs for 24 hours.")
    )
    return redirect("staff:webhook", endpoint_id=endpoint.pk)


@guard.requires(PERMISSION)
@require_POST
def webhook_resend(request: HttpRequest, endpoint_id: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, endpoint_id)
    delivery = access.get_object_or_404_for(
        request.user, EventDelivery.objects.filter(endpoint=endpoint), "endpoint__site",
        pk=delivery_id,
    )  # fmt: skip
    if endpoints.resend(delivery, by=request.user):
        messages.success(request, _("The event will be sent again in a moment."))
    else:
        messages.info(request, _("The event is being sent right now; it was left to finish."))
    return redirect("staff:webhook", endpoint_id=endpoint.pk)


def _attach(form: EndpointForm, error: ValidationError) -> None:
    """An entry point's refusal, on the field it is about."""
    fields = {
        "unknown_event_type": "event_types",
        "no_event_type": "event_types",
        "too_long": "description",
    }
    form.add_error(fields.get(getattr(error, "code", None), "url"), error)


def _secret_once(request: HttpRequest, endpoint: WebhookEndpoint) -> str:
    """The secret just made for this endpoint, taken out of the session."""
    held = request.session.get(_SHOWN_ONCE)
    if not isinstance(held, dict) or held.get("id") != endpoint.pk:
        return ""
    del request.session[_SHOWN_ONCE]
    return str(held.get("secret", ""))


def _log_page(request: HttpRequest, endpoint: WebhookEndpoint) -> dict:
    """The endpoint's deliveries, newest first, a keyset page at a time, each with
    its attempts."""
    rows = EventDelivery.objects.filter(endpoint=endpoint).select_related("event")
    after = parse_cursor(request.GET.get("after", ""))
    bad_cursor = bool(request.GET.get("after")) and after is None
    if after is not None:
        rows = rows.filter(id__lt=after[1])
    page = list(rows.order_by("-id")[: LOG_PAGE + 1])
    more = len(page) > LOG_PAGE
    page = page[:LOG_PAGE]
    attempts: dict[int, list] = {}
    for entry in DeliveryAttemptLog.objects.filter(delivery__in=page).order_by("id"):
        attempts.setdefault(entry.delivery_id, []).append(entry)
    for delivery in page:
        delivery.tries = attempts.get(delivery.pk, [])
    last = page[-1] if page else None
    return {
        "deliveries": page,
        "next_cursor": make_cursor(last.created_at, last.pk) if more and last else "",
        "bad_cursor": bad_cursor,
    }
