"""carebell's own pages outside the admin."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse


def home(request: HttpRequest) -> HttpResponseRedirect:
    """The start page is the sign-in page (a signed-in user goes on to the admin)."""
    query = urlencode({"next": reverse("admin:index")}, safe="/")
    return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
