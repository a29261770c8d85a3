"""The one rule for who may see which site and which object (SPEC §2, §10).

Every door — the Django admin, the staff app, the API next — asks here. Staff see
only the sites granted to them through StaffMembership; superusers see every site.
What a staff member may do there comes from carebell's role permissions, all held
on sites.Site (carebell.sites.roles): `can(user, "edit_delivery_settings", site)`.

An object of a site the user may not see does not exist for them: lookups answer
404, never a 403 that would confirm the object is there.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from carebell.sites.models import Site, StaffMembership

#: A site path of "" means the model is Site itself.
SITE_ITSELF = ""


def granted_site_ids(user) -> QuerySet:
    """The ids of the sites `user` was granted, as a subquery."""
    return StaffMembership.objects.filter(user_id=user.pk).values("site_id")


def sites_for(user) -> QuerySet:
    """The sites `user` may see, in a stable order (none for an anonymous user)."""
    sites = Site.objects.select_related("organization").order_by("organization__name", "name")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return sites.none()
    return sites if user.is_superuser else sites.filter(pk__in=granted_site_ids(user))


def held_permissions_sql(user: str) -> str:
    """A SELECT of (app_label, codename), one row per permission held by the user
    whose id is the SQL expression `user` (a column of the enclosing statement; it
    is repeated, so not a parameter): Django's ModelBackend rule — their own
    permissions and their groups' — and none for an inactive user. A superuser
    holds every permission without asking (User.has_perm), so callers settle
    superusers themselves.

    For the statements that read a user's permissions together with other things
    (the staff polls' guard, the API token): one description of the rule, so theirs
    cannot drift apart. Its aliases all start with "held_". The subqueries name
    `user`, not a column of this SELECT, so the database reads each once."""
    q = connection.ops.quote_name
    user_model = get_user_model()
    group_model = user_model.groups.field.related_model
    permission_model = group_model.permissions.field.related_model
    content_type_model = permission_model.content_type.field.related_model
    users = q(user_model._meta.db_table)
    own = q(user_model.user_permissions.through._meta.db_table)
    member = q(user_model.groups.through._meta.db_table)
    granted = q(group_model.permissions.through._meta.db_table)
    active = q(user_model._meta.get_field("is_active").column)
    return (
        "SELECT held_type.app_label, held_p.codename"
        f" FROM {q(permission_model._meta.db_table)} held_p"
        f" JOIN {q(content_type_model._meta.db_table)} held_type"
        " ON held_type.id = held_p.content_type_id"
        f" WHERE EXISTS (SELECT 1 FROM {users} held_user"
        f"  WHERE held_user.id = {user} AND held_user.{active})"
        f" AND (held_p.id IN (SELECT held_own.permission_id FROM {own} held_own"
        f"  WHERE held_own.user_id = {user})"
        f" OR held_p.id IN (SELECT held_granted.permission_id FROM {granted} held_granted"
        f"  JOIN {member} held_member ON held_member.group_id = held_granted.group_id"
        f"  WHERE held_member.user_id = {user}))"
    )


def may_see(user, site: Site | None) -> bool:
    return site is not None and sites_for(user).filter(pk=site.pk).exists()


def permission_name(permission: str) -> str:
    """ "edit_delivery_settings" → "sites.edit_delivery_settings" (either is accepted)."""
    return permission if "." in permission else f"sites.{permission}"


def can(user, permission: str, site: Site | None) -> bool:
    """True when `user` may see `site` and holds `permission` (a carebell role
    permission codename) there."""
    return may_see(user, site) and holds(user, permission)


def holds(user, permission: str) -> bool:
    """`can` for a site the caller has just taken from `sites_for(user)`, whose
    visibility is therefore settled (the staff guard: one query fewer per page)."""
    return user.has_perm(permission_name(permission))


def held_at(user, permissions, site: Site | None) -> set[str]:
    """Which of `permissions` `user` holds at `site` — `can` for each, with the one
    question of whether the user may see the site asked once (a page's menu asks
    for every entry)."""
    if not may_see(user, site):
        return set()
    return {p for p in permissions if holds(user, p)}


def scope(queryset: QuerySet, user, site_path: str | None) -> QuerySet:
    """Rows of `queryset` the user may see: all for superusers, none when the model
    has no site (`site_path` None), else those whose site at `site_path` is granted."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return queryset
    if site_path is None or not getattr(user, "is_authenticated", False):
        return queryset.none()
    lookup = f"{site_path}__in" if site_path else "pk__in"
    scoped = queryset.filter(**{lookup: granted_site_ids(user)})
    return scoped.distinct() if site_path and _crosses_many(queryset, site_path) else scoped


def get_object_or_404_for(user, queryset: QuerySet, site_path: str | None, **lookup):
    """The one object matching `lookup` among those `user` may see, else 404 (the
    same answer whether it belongs to another organization or does not exist)."""
    try:
        return scope(queryset, user, site_path).get(**lookup)
    except (queryset.model.DoesNotExist, queryset.model.MultipleObjectsReturned, ValueError):
        raise Http404 from None


def _crosses_many(queryset: QuerySet, site_path: str) -> bool:
    """True when the path walks a reverse or many-to-many relation (so rows repeat)."""
    model = queryset.model
    for name in site_path.split("__"):
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        if field.related_model is None:
            return False
        model = field.related_model
    return False
