"""The permission groups carebell ships (SPEC §10). Created by a data migration and
kept in one place so tests, the demo and the migration agree."""

from __future__ import annotations

SYSTEM_ADMINISTRATOR = "System Administrator"
FRONT_DESK = "Front Desk"
PHARMACY_STAFF = "Pharmacy Staff"
READ_ONLY = "Read-only"

_DESK = [
    "view_automated_messages",
    "group_send",
    "work_inbox",
    "view_queue",
    "delete_queued",
    "view_patients",
    "edit_patients",
]

#: Role → the carebell permission codenames (all on sites.Site) it holds.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    SYSTEM_ADMINISTRATOR: [
        *_DESK,
        "edit_automated_messages",
        "edit_delivery_settings",
        "manage_templates",
        "view_audit",
        "import_data",
        "manage_integrations",
    ],
    FRONT_DESK: list(_DESK),
    PHARMACY_STAFF: [*_DESK, "manage_templates"],
    READ_ONLY: ["view_automated_messages", "view_queue", "view_patients"],
}


def ensure_roles(sender=None, **kwargs) -> None:
    """Create the role groups and give each exactly its permissions. Connected to
    post_migrate, so every `carebell migrate` (and every emptied test database) ends
    with the roles as this module defines them, including permissions added later."""
    from django.contrib.auth.models import Group, Permission

    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="sites", codename__in=codenames)
        )
