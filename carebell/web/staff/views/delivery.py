"""The site's delivery settings (SPEC §4): read by every role that may view the
automated messages, changed only with edit_delivery_settings, saved through
carebell.sites.actions.save_delivery_settings (which replans pending messages)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from carebell.sites.actions import save_delivery_settings
from carebell.sites.models import DeliverySettings
from carebell.web.staff import engine, guard
from carebell.web.staff.forms import DeliverySettingsForm


@guard.requires("view_automated_messages")
def delivery_settings(request: HttpRequest) -> HttpResponse:
    site = request.site
    row = DeliverySettings.objects.filter(site=site).first() or DeliverySettings.defaults_for(site)
    editable = guard.can(request, "edit_delivery_settings")
    if request.method == "POST" and not editable:
        raise PermissionDenied
    form = DeliverySettingsForm(guard.posted(request), instance=row, site=site)
    if request.method == "POST" and form.is_valid():
        saved_at = timezone.now()
        try:
            save_delivery_settings(form.save(commit=False), by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            replanned = engine.replanned_since(site, saved_at)
            messages.success(request, _saved_message(replanned))
            return redirect("staff:delivery-settings")
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "staff/delivery_settings.html", {"form": form, "editable": editable})


def _saved_message(replanned: int) -> str:
    if not replanned:
        return _("Delivery settings saved. No pending message needed planning again.")
    return ngettext(
        "Delivery settings saved. %(count)d pending message was planned again.",
        "Delivery settings saved. %(count)d pending messages were planned again.",
        replanned,
    ) % {"count": replanned}
