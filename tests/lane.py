"""What the tests of the machine lane (carebell.web.lane) check of an answer."""

from __future__ import annotations


def skipped_the_page_middleware(response) -> bool:
    """The request went past the session, user and message middleware."""
    request = response.wsgi_request
    return not hasattr(request, "session") and not hasattr(request, "user")
