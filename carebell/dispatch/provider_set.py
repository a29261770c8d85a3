"""The providers a process sends through, built once and reused for every batch."""

from __future__ import annotations

from carebell.core.vocab import Channel
from carebell.providers.base import Provider
from carebell.providers.registry import get_provider, provider_name
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
