"""access.held_permissions_sql, the SQL the staff polls' guard and the API tokens
read a user's permissions with, answers as Django's ModelBackend does."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection

from carebell.sites import access

pytestmark = pytest.mark.django_db

INBOX = "sites.work_inbox"
PATIENTS = "sites.view_patients"  # another codename of the same app


def permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def held(user) -> set[str]:
    """The fragment for the user's id written out (an SQL expression like any)."""
    with connection.cursor() as cursor:
        cursor.execute(access.held_permissions_sql(str(int(user.pk))))
        return {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}


def holds(user, name: str) -> bool:
    """The fragment correlated with a column of the enclosing statement, as the
    guard asks it."""
    users = connection.ops.quote_name(User._meta.db_table)
    fragment = access.held_permissions_sql("u.id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM ({fragment}) held"
            " WHERE held.app_label = %s AND held.codename = %s)"
            f" FROM {users} u WHERE u.id = %s",
            [*name.split("."), user.pk],
        )
        return bool(cursor.fetchone()[0])


def django(user) -> set[str]:
    return ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))


def person(own=(), groups=(), *, active=True) -> User:
    user = User.objects.create_user(f"person{User.objects.count()}", is_active=active)
    user.user_permissions.add(*(permission(name) for name in own))
    for names in groups:
        group = Group.objects.create(name=f"group{Group.objects.count()}")
        group.permissions.add(*(permission(name) for name in names))
        user.groups.add(group)
    return user


@pytest.mark.parametrize(
    ("own", "groups", "active"),
    [
        pytest.param([INBOX], [], True, id="own"),
        pytest.param([], [[INBOX]], True, id="group"),
        pytest.param([INBOX], [[INBOX, PATIENTS]], True, id="both"),
        pytest.param([], [], True, id="none"),
        pytest.param([], [[]], True, id="a group without permissions"),
        pytest.param([INBOX], [[INBOX]], False, id="inactive"),
        pytest.param([PATIENTS], [], True, id="another codename"),
    ],
)
def test_it_holds_what_model_backend_holds(own, groups, active):
    user = person(own, groups, active=active)
    person([INBOX, PATIENTS], [[INBOX, PATIENTS]])  # someone else's never count
    assert held(user) == django(user)
    fresh = User.objects.get(pk=user.pk)
    for name in (INBOX, PATIENTS):
        assert holds(user, name) == fresh.has_perm(name)


def test_a_permission_held_both_ways_is_one_row():
    user = person([INBOX], [[INBOX], [INBOX]])
    with connection.cursor() as cursor:
        cursor.execute(access.held_permissions_sql(str(int(user.pk))))
        assert len(cursor.fetchall()) == 1
