"""The API tokens page and the API reference in Chromium: a token created and shown
once, the reference drawn by its local Swagger UI files with nothing refused by the
Content-Security-Policy, and a call tried from it with the token. Screens are saved
under var/screenshots/."""

from __future__ import annotations

import pytest

from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.browser import RECORD_VIOLATIONS, shoot, sign_in
from tests.web.conftest import browser, page  # noqa: F401 (the shared Chromium fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_token_is_made_and_the_reference_tries_it(page, live_server, site):  # noqa: F811
    factories.make_staff(site, FRONT_DESK, username="robin")
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1200, "height": 800})
    sign_in(page, f"{live_server.url}/staff/sign-in/", "robin")
    page.wait_for_selector("text=Today at")
    page.click("header >> text=API tokens")
    page.fill("#id_name", "Practice system sync")
    page.click("main button[type=submit]")
    secret = page.inner_text("#new-token")
    assert secret.startswith("cb_")
    shoot(page, "api-tokens")
    page.click("text=API reference")
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    assert "sites" in page.inner_text("#swagger-ui")
    shoot(page, "api-reference", full_page=False)
    page.click(".authorize")
    page.fill(".modal-ux input[type=text]", secret)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.close-modal")
    page.click("#operations-sites-carebell_api_routes_sites_list_sites")
    page.click("#operations-sites-carebell_api_routes_sites_list_sites .try-out__btn")
    page.click("#operations-sites-carebell_api_routes_sites_list_sites .execute")
    live = "#operations-sites-carebell_api_routes_sites_list_sites .live-responses-table"
    page.wait_for_selector(f"{live} .response-col_description", timeout=30_000)
    assert site.name in page.inner_text(live)
    page.locator(live).scroll_into_view_if_needed()
    shoot(page, "api-reference-try", full_page=False)
    assert page.evaluate("window.__violations") == []
