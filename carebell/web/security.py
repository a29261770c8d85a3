"""Response headers for every page beyond Django's and django-csp's own.

- Permissions-Policy: carebell needs no camera, microphone, location or payment API,
  so no page (nor anything injected into one) may ask for them.
- Cache-Control: no-store on the patient pages (/p/…): they show a person's
  appointment or address, behind a link that may be opened on a shared device, and
  must stay in no browser or proxy cache.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

NO_STORE_PREFIXES = ("/p/",)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Permissions-Policy" not in response:
            response["Permissions-Policy"] = settings.PERMISSIONS_POLICY
        if request.path.startswith(NO_STORE_PREFIXES):
            response["Cache-Control"] = "no-store"
        return response
