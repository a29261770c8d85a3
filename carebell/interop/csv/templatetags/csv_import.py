"""The staff header's Import link, for those who may import at the current site."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from carebell.sites import access

register = template.Library()


@register.inclusion_tag("staff/import_nav.html", takes_context=True)
def import_nav_link(context):
    request = context["request"]
    site = getattr(request, "site", None)
    view = getattr(request.resolver_match, "view_name", "")
    return {
        "show": site is not None and access.can(request.user, "import_data", site),
        "current": view.startswith("staff:import"),
        "label": _("Import"),
    }
