"""The one access rule (carebell.sites.access) and the rule that every staff view
names its permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http import Http404
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern

from carebell.messaging.models import AutomatedMessage
from carebell.sites import access
from carebell.sites.models import Site
from carebell.sites.roles import FRONT_DESK, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests import factories

pytestmark = pytest.mark.django_db

#: Views anyone may open, each on purpose: the staff sign-in steps, the patient
#: pages (signed links), provider hooks (signature-checked), metrics, the start page,
#: the FHIR CapabilityStatement (read before a client has a token), and the Django
#: admin, which checks its own permissions.
PUBLIC_PREFIXES = (
    "admin/", "hooks/", "p/", "metrics", "static/", "anymail/", "fhir/R4/metadata",
)  # fmt: skip
PUBLIC_NAMES = {"home", "staff:sign-in", "staff:sign-in-code", "staff:sign-out"}


def walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else ""
            yield route, name, pattern.callback


def unguarded_routes(resolver: URLResolver) -> list[str]:
    unguarded = []
    for route, name, view in walk(resolver):
        if route.startswith(PUBLIC_PREFIXES) or name in PUBLIC_NAMES:
            continue
        if getattr(view, "staff_permission", None) is None:
            unguarded.append(route)
    return unguarded


def test_every_staff_view_names_its_permission():
    assert unguarded_routes(get_resolver()) == []


def test_the_walk_catches_a_view_without_a_permission():
    from django.urls import include, path

    urls = [path("staff/", include([path("forgotten/", lambda request: None, name="x")]))]
    assert unguarded_routes(URLResolver(RegexPattern(r"^/"), urls)) == ["staff/forgotten/"]


def test_the_public_staff_views_are_marked_public():
    views = {name: view for _route, name, view in walk(get_resolver())}
    for name in PUBLIC_NAMES - {"home"}:
        assert getattr(views[name], "staff_public", False), name


def test_the_walker_sees_the_staff_views():
    names = {name for _route, name, _view in walk(get_resolver())}
    assert {"staff:home", "staff:delivery-settings", "staff:rules", "staff:rule"} <= names


def test_staff_see_only_their_granted_sites(site, pharmacy, other_org_site):
    user = factories.make_staff(site, FRONT_DESK)
    assert list(access.sites_for(user)) == [site]


def test_superusers_see_every_site(site, other_org_site):
    root = User.objects.create_superuser("root", password="a-long-test-password")
    assert set(access.sites_for(root)) == set(Site.objects.all())


def test_nobody_signed_out_sees_a_site(site):
    assert not access.sites_for(AnonymousUser()).exists()
    assert not access.can(AnonymousUser(), "view_queue", site)


def test_an_inactive_user_sees_no_site(site):
    user = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    user.is_active = False
    assert not access.sites_for(user).exists()


def test_can_needs_both_the_site_and_the_permission(site, other_org_site):
    desk = factories.make_staff(site, FRONT_DESK)
    reader = factories.make_staff(site, READ_ONLY)
    assert access.can(desk, "work_inbox", site)
    assert access.can(desk, "sites.work_inbox", site)
    assert not access.can(desk, "edit_delivery_settings", site)
    assert not access.can(reader, "work_inbox", site)
    assert not access.can(desk, "work_inbox", other_org_site)


def test_scope_keeps_only_rows_of_granted_sites(site, other_org_site):
    ours = AutomatedMessage.objects.create(site=site, kind="birthday", name="Ours")
    AutomatedMessage.objects.create(site=other_org_site, kind="birthday", name="Theirs")
    user = factories.make_staff(site, FRONT_DESK)
    assert list(access.scope(AutomatedMessage.objects.all(), user, "site")) == [ours]
    assert not access.scope(AutomatedMessage.objects.all(), user, None).exists()


def test_another_organizations_object_is_not_found(site, other_org_site):
    theirs = AutomatedMessage.objects.create(site=other_org_site, kind="birthday", name="x")
    user = factories.make_staff(site, SYSTEM_ADMINISTRATOR)
    with pytest.raises(Http404):
        access.get_object_or_404_for(user, AutomatedMessage.objects.all(), "site", pk=theirs.pk)
    with pytest.raises(Http404):
        access.get_object_or_404_for(user, AutomatedMessage.objects.all(), "site", pk="x")


def test_the_admin_scopes_with_the_same_rule(site, other_org_site):
    from carebell.sites.admin_scoping import scope_to_user

    user = factories.make_staff(site, FRONT_DESK)
    assert list(scope_to_user(Site.objects.all(), user, "")) == [site]
