"""The staff frame: the header (site switcher, navigation by permission, account)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from carebell.sites import access

register = template.Library()

#: (url name, label, the permission that shows it; None: every signed-in user).
NAVIGATION = [
    ("staff:home", _("Today"), None),
    ("staff:rules", _("Automated messages"), "view_automated_messages"),
    ("staff:delivery-settings", _("Delivery settings"), "view_automated_messages"),
]


@register.inclusion_tag("staff/_header.html", takes_context=True)
def staff_header(context):
    request = context["request"]
    site = getattr(request, "site", None)
    user = request.user
    current = getattr(request.resolver_match, "view_name", "")
    links = [
        {"url": name, "label": label, "current": name == current}
        for name, label, permission in NAVIGATION
        if permission is None or access.can(user, permission, site)
    ]
    return {
        "request": request,
        "site": site,
        "sites": list(access.sites_for(user)) if site else [],
        "links": links,
        "user": user,
    }


@register.filter
def zone_name(site) -> str:
    return getattr(site, "time_zone", "")
