"""What every new site starts with: its delivery settings, the default message
formats, and the automated messages ready to enable (SPEC §5: disabled until an
administrator enables them)."""

from __future__ import annotations

from django.db import transaction

from carebell.messaging.models import AutomatedMessage
from carebell.messaging.templates_install import install_default_templates
from carebell.planning.rules_defaults import default_rules
from carebell.sites.models import DeliverySettings, Site


def set_up_site(site: Site) -> None:
    """Give `site` what it lacks of the defaults. Safe to run again."""
    with transaction.atomic():
        if not DeliverySettings.objects.filter(site=site).exists():
            DeliverySettings.defaults_for(site).save()
        install_default_templates(site)
        if not AutomatedMessage.objects.filter(site=site).exists():
            AutomatedMessage.objects.bulk_create(default_rules(site))
