"""The second factor holds at every door that signs staff in, the Django admin too:
a session signed in with a password alone, for a user who holds an authenticator (or
an administrator who must set one up), reaches no admin page until the code is given.
Runs after django-otp's middleware, which tells whether the session is verified."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from carebell.web.staff import guard

GUARDED_PREFIX = "/admin/"
OPEN_PATHS = ("/admin/login/", "/admin/logout/")


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(GUARDED_PREFIX) and not request.path.startswith(OPEN_PATHS):
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                if guard.needs_code(user):
                    query = urlencode({"next": request.get_full_path()}, safe="/")
                    return HttpResponseRedirect(f"{reverse('staff:sign-in-code')}?{query}")
                if guard.must_set_up_two_factor(user):
                    return HttpResponseRedirect(reverse("staff:two-factor"))
        return self.get_response(request)
