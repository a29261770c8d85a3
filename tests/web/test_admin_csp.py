"""The Django admin works under carebell's Content-Security-Policy, in a real browser:
signing in, a list with its actions, and a change form with its date widgets run
with nothing refused by the policy, and an injected script does not run."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests import factories
from tests.browser import RECORD_VIOLATIONS, sign_in, violations

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_admin_runs_under_the_policy(page, live_server, site):
    patient = factories.make_patient(site, first_name="Ana")
    appointment = factories.make_appointment(patient)
    User.objects.create_superuser("root", password="a-long-test-password")
    page.add_init_script(RECORD_VIOLATIONS)

    sign_in(page, f"{live_server.url}/admin/login/", "root", submit="input[type=submit]")
    page.wait_for_selector("#user-tools")
    assert violations(page) == []

    page.goto(f"{live_server.url}/admin/people/patient/")
    page.check("#action-toggle")  # actions.js: selecting all shows the counter
    page.wait_for_selector(".action-counter")
    assert violations(page) == []

    page.goto(f"{live_server.url}/admin/appointments/appointment/{appointment.id}/change/")
    page.wait_for_selector(".datetimeshortcuts a")  # DateTimeShortcuts.js ran
    assert violations(page) == []

    # …while a script injected into the page is refused.
    page.evaluate(
        """() => { const s = document.createElement("script");
        s.textContent = "window.__ran = true"; document.body.append(s); }"""
    )
    assert page.evaluate("window.__ran") is None
    assert violations(page) == ["script-src-elem inline"]
