"""What the browser tests share: where screenshots go, the script that records
Content-Security-Policy violations, and signing in through the page."""

from __future__ import annotations

from pathlib import Path

from tests.factories import STAFF_PASSWORD

SHOTS = Path("var/screenshots")
#: Every staff member the factories make has this password.
PASSWORD = "a-long-test-password"
#: Add with page.add_init_script before the first page: every violation the page
#: reports is kept in window.__violations.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
    window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def shoot(page, name: str, *, full_page: bool = True) -> None:
    """var/screenshots/NAME.png, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def violations(page) -> list[str]:
    return page.evaluate("window.__violations")


def no_violations(page) -> None:
    assert violations(page) == []


def sign_in(page, url: str, username: str, *, submit: str = "main button[type=submit]") -> None:
    """Fill in the sign-in form at `url` (any staff page sends there) and submit it."""
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click(submit)
