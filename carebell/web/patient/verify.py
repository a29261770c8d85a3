"""The verification page (SPEC §7.5): a signed link, valid while its code is, where
the patient types the code they received. It names only the site and the masked
address; a wrong, altered or expired link shows the same "not valid" page as the
other patient pages. A malformed entry spends no try; a wrong one does."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from carebell.people import verification
from carebell.planning.decisions import masked

_WORDS = {
    "en": {
        "title": "Enter your code",
        "lead": "Type the 6-digit code {site} sent to {address}.",
        "button": "Verify",
        "malformed": "The code is 6 digits.",
        "wrong": "That code is not right. Tries left: {left}.",
        "done": "Thank you: {address} is verified.",
        "closed": "This code no longer works. Please ask {site} for a new one.",
    },
    "es": {
        "title": "Escriba su clave",
        "lead": "Escriba la clave de 6 dígitos que {site} envió a {address}.",
        "button": "Verificar",
        "malformed": "La clave tiene 6 dígitos.",
        "wrong": "Esa clave no es correcta. Intentos restantes: {left}.",
        "done": "Gracias: {address} quedó verificado.",
        "closed": "Esta clave ya no sirve. Pida una nueva a {site}.",
    },
}


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    code = verification.code_from_link(token)
    if code is None:
        return render(request, "patient/invalid.html", status=404)
    point = code.contact_point
    site = point.contact.patient.site
    words = _WORDS.get(point.contact.language, _WORDS["en"])
    facts = {"site": site.name, "address": masked(code.address)}
    said = {k: v.format(left="{left}", **facts) for k, v in words.items()}
    context = {"site": site, "lang": point.contact.language, "error": "", "words": said}
    if request.method == "GET":
        return render(request, "patient/verify.html", context)
    typed = re.sub(r"\s", "", request.POST.get("code", ""))[:20]
    if not re.fullmatch(r"\d{6}", typed):
        context["error"] = context["words"]["malformed"]
        return render(request, "patient/verify.html", context, status=400)
    checked = verification.check_code(point, typed, method=verification.Method.PATIENT_PAGE)
    if checked.verified:
        return render(request, "patient/verified.html", context)
    if checked.outcome is verification.Outcome.WRONG:
        context["error"] = context["words"]["wrong"].format(left=checked.tries_left)
        return render(request, "patient/verify.html", context, status=400)
    context["error"] = context["words"]["closed"]
    context["closed"] = True
    return render(request, "patient/verify.html", context, status=400)
