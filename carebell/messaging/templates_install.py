"""Giving a site carebell's default message formats (SPEC §6.1)."""

from __future__ import annotations

from carebell.formats.service import all_defaults
from carebell.messaging.models import MessageTemplate
from carebell.sites.models import Site


def install_default_templates(site: Site) -> int:
    """Add every default format (kind × channel × language) the site lacks, in use.
    Safe to run again: formats the site already has are left as staff edited them.
    Returns how many were added."""
    have = set(
        MessageTemplate.objects.filter(site=site, in_use=True).values_list(
            "kind", "channel", "language"
        )
    )
    missing = [
        MessageTemplate(
            site=site,
            kind=d.kind,
            channel=d.channel,
            language=d.language,
            name=d.name,
            subject=d.subject,
            body=d.body,
            html_body=d.html_body,
            in_use=True,
            is_default=True,
        )
        for d in all_defaults()
        if (d.kind.value, d.channel.value, d.language) not in have
    ]
    # Defaults are validated by their own tests; bulk_create skips per-row save().
    MessageTemplate.objects.bulk_create(missing)
    return len(missing)
