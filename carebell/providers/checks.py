"""`carebell check --deploy`: the simulated phone and mailbox must not be reachable in
production. Their webhooks believe whatever is signed with the simulator's secret,
and what is sent to them reaches no patient."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.db import DatabaseError

from carebell.providers.registry import CHOICES, SIMULATED

HINT = (
    "Choose a real provider (or console) and leave CAREBELL_SIM_ENABLED off; the "
    "simulator is for development and the demo (CAREBELL_DEBUG=1)."
)


@register("carebell", deploy=True)
def check_no_simulator_in_production(app_configs=None, **kwargs) -> list[Error]:
    if settings.DEBUG:
        return []
    errors = []
    if getattr(settings, "SIM_ENABLED", False):
        errors.append(
            Error(
                "CAREBELL_SIM_ENABLED is on with debug off: the simulator's webhooks "
                "accept anything signed with its secret.",
                hint=HINT,
                id="carebell.E001",
            )
        )
    for setting, _ in CHOICES.values():
        if getattr(settings, setting, "") in SIMULATED:
            errors.append(
                Error(
                    f"CAREBELL_{setting} is sim with debug off: nothing sent reaches a patient.",
                    hint=HINT,
                    id="carebell.E002",
                )
            )
    site_ids = sites_using_the_simulator()
    if site_ids:
        errors.append(
            Error(
                "Sites send through the simulator with debug off (site ids "
                f"{', '.join(map(str, site_ids))}): nothing they send reaches a patient.",
                hint="Remove the sim entries from those sites' providers. " + HINT,
                id="carebell.E003",
            )
        )
    return errors


def sites_using_the_simulator() -> list[int]:
    """Ids of the sites whose provider overrides name the simulator; none when the
    database cannot be read yet (before the first migrate)."""
    from carebell.sites.models import Site

    try:
        rows = list(Site.objects.values_list("id", "providers"))
    except DatabaseError:
        return []
    return sorted(id_ for id_, chosen in rows if _names_the_simulator(chosen))


def _names_the_simulator(chosen: object) -> bool:
    values = chosen.values() if isinstance(chosen, dict) else ()
    return any(isinstance(name, str) and name in SIMULATED for name in values)
