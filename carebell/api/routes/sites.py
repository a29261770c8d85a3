"""Sites and their delivery settings (SPEC §2, §4): read by any staff member of the
site; changed with edit_delivery_settings, through carebell.sites.actions."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from carebell.api.common import (
    Id,
    PageParams,
    check_if_match,
    note,
    page_of,
    paginate,
    require,
    site_for,
    tagged,
    user_of,
)
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.sites import access
from carebell.sites.actions import save_delivery_settings, save_site
from carebell.sites.models import DeliverySettings, Site

router = Router(tags=["sites"])
EDIT = "edit_delivery_settings"

SITE_FIELDS = [
    *("organization", "name", "kind", "time_zone", "phone_region", "phone", "address"),
    *("sms_from", "email_from", "caller_id", "updated_at"),
]
SITE_EDITABLE = [
    "name",
    "time_zone",
    "phone_region",
    "phone",
    "address",
    "sms_from",
    "email_from",
    "caller_id",
]
SiteOut = out_schema("SiteOut", Site, SITE_FIELDS)
_, SiteChange = in_schemas("Site", Site, SITE_EDITABLE)

_DAYS = list[str]
_CHANNELS = list[str]
SETTINGS_JSON = {
    "delivery_days": _DAYS,
    "restricted_words": list[str],
    "refill_channels": _CHANNELS,
    "ready_channels": _CHANNELS,
    "pickup_reminder_days": list[int],
    "pickup_confirmation_channels": _CHANNELS,
    "birthday_channels": _CHANNELS,
    "welcome_channels": _CHANNELS,
    "general_channels": _CHANNELS,
    "review_channels": _CHANNELS,
    "patient_defaults": dict[str, str],
}
SETTINGS_FIELDS = [
    f.name
    for f in DeliverySettings._meta.concrete_fields
    if f.name not in ("id", "site", "created_at", "updated_at")
]
SettingsOut = out_schema(
    "DeliverySettingsOut",
    DeliverySettings,
    ["site", *SETTINGS_FIELDS, "updated_at"],
    json_types=SETTINGS_JSON,
)
_, SettingsChange = in_schemas(
    "DeliverySettings", DeliverySettings, SETTINGS_FIELDS, json_types=SETTINGS_JSON
)


def _seen(request: HttpRequest, site_id: int) -> Site:
    site = access.get_object_or_404_for(
        user_of(request), Site.objects.select_related("delivery"), "", pk=site_id
    )
    note(request, site, site_id=site.pk)
    return site


@router.get("/sites", response=page_of(SiteOut), summary="The sites the token's user may see")
def list_sites(request: HttpRequest, page: PageParams):
    note(request, object_type="sites.site")
    return paginate(access.sites_for(user_of(request)), page)


@router.get("/sites/{site_id}", response=SiteOut, summary="One site")
def get_site(request: HttpRequest, site_id: Id, response: HttpResponse):
    return tagged(response, SiteOut, _seen(request, site_id))


@router.patch(
    "/sites/{site_id}", response=SiteOut, summary="Change a site (edit_delivery_settings)"
)
def change_site(request: HttpRequest, site_id: Id, body: SiteChange, response: HttpResponse):
    site = site_for(request, site_id, EDIT)
    check_if_match(request, SiteOut, site)
    apply(site, body, creating=False)
    save_site(site, by=user_of(request))
    return tagged(response, SiteOut, site)


def _settings(request: HttpRequest, site_id: int, permission: str | None) -> DeliverySettings:
    site = _seen(request, site_id) if permission is None else site_for(request, site_id, permission)
    row = DeliverySettings.objects.filter(site=site).select_related("site").first()
    if row is None:
        raise_not_found()
    note(request, row, site_id=site.pk)
    return row


def raise_not_found():
    from django.http import Http404

    raise Http404


@router.get(
    "/sites/{site_id}/delivery-settings", response=SettingsOut, summary="A site's delivery settings"
)
def get_delivery_settings(request: HttpRequest, site_id: Id, response: HttpResponse):
    row = _settings(request, site_id, None)
    require(request, "view_automated_messages", row.site)
    return tagged(response, SettingsOut, row)


@router.patch(
    "/sites/{site_id}/delivery-settings",
    response=SettingsOut,
    summary="Change a site's delivery settings (pending messages are planned again)",
)
def change_delivery_settings(
    request: HttpRequest, site_id: Id, body: SettingsChange, response: HttpResponse
):
    row = _settings(request, site_id, EDIT)
    check_if_match(request, SettingsOut, row)
    apply(row, body, creating=False)
    save_delivery_settings(row, by=user_of(request))
    return tagged(response, SettingsOut, row)
