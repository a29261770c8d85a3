"""carebell's own pages outside the admin."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse


def home(request: HttpRequest) -> HttpResponseRedirect:
    """The start page is the staff app's sign-in page (a signed-in user goes on to
    the staff home page)."""
    if request.user.is_authenticated:
        return HttpResponseRedirect(reverse("staff:home"))
    query = urlencode({"next": reverse("staff:home")}, safe="/")
    return HttpResponseRedirect(f"{reverse('staff:sign-in')}?{query}")
