"""The providers a process sends through, built once and reused for every batch."""

from __future__ import annotations

from carebell.core.vocab import Channel
from carebell.providers.base import Provider
from carebell.providers.registry import CHOICES, get_provider, provider_name
from carebell.sites.models import Site


class ProviderSet:
    """One provider instance per (channel, chosen name): keep-alive sessions and
    pacing state live as long as the worker."""

    def __init__(self) -> None:
        self._built: dict[tuple[Channel, str], Provider] = {}

    def for_site(self, channel: Channel | str, site: Site) -> Provider:
        channel = Channel(channel)
        name = provider_name(channel, site.providers)
        key = (channel, name)
        if key not in self._built:
            self._built[key] = get_provider(channel, site.providers)
        return self._built[key]


def provider_named(name: str) -> Provider | None:
    """The provider whose `name` is `name` (for webhooks), or None."""
    for _setting, factories in CHOICES.values():
        for factory in factories.values():
            provider = factory()
            if provider.name == name:
                return provider
    return None
