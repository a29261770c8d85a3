"""Quick responses (SPEC §7.4): the site's saved replies, listed for everyone who
works the inbox and written by those who manage the site's texts
(manage_templates). Thin: carebell.inbox.quick_responses checks and saves."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from carebell.core.placeholders import CATALOGUE, allowed_for
from carebell.core.vocab import Kind
from carebell.inbox import quick_responses
from carebell.web.staff import guard


def _placeholders() -> list:
    return [CATALOGUE[name] for name in allowed_for(Kind.INBOX_REPLY)]


@guard.requires("work_inbox")
def quick_response_list(request: HttpRequest) -> HttpResponse:
    context = {
        "quick_responses": quick_responses.list_quick_responses(request.site, by=request.user),
        "can_manage": guard.can(request, quick_responses.MANAGE),
    }
    return render(request, "staff/quick_responses.html", context)


@guard.requires(quick_responses.MANAGE)
def quick_response_edit(request: HttpRequest, quick_response_id: int | None = None) -> HttpResponse:
    found = None
    if quick_response_id is not None:
        found = quick_responses.get_quick_response(request.site, quick_response_id, by=request.user)
    form = {"name": found.name if found else "", "body": found.body if found else ""}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        form = {"name": request.POST.get("name", ""), "body": request.POST.get("body", "")}
        try:
            saved, warnings = quick_responses.save_quick_response(
                request.site, name=form["name"], body=form["body"], quick_response=found,
                by=request.user,
            )  # fmt: skip
        except ValidationError as error:
            errors, status = error.message_dict, 400
        else:
            messages.success(request, _("Quick response “%(name)s” saved.") % {"name": saved.name})
            for warning in warnings:
                messages.warning(request, warning.message)
            return redirect("staff:quick-responses")
    context = {
        "quick_response": found,
        "form": form,
        "errors": errors,
        "placeholders": _placeholders(),
        "name_limit": quick_responses.NAME_LIMIT,
        "body_limit": quick_responses.BODY_LIMIT,
    }
    return render(request, "staff/quick_response_edit.html", context, status=status)


@guard.requires(quick_responses.MANAGE)
@require_POST
def quick_response_delete(request: HttpRequest, quick_response_id: int) -> HttpResponse:
    found = quick_responses.get_quick_response(request.site, quick_response_id, by=request.user)
    name = found.name
    quick_responses.delete_quick_response(found, by=request.user)
    messages.success(request, _("Quick response “%(name)s” deleted.") % {"name": name})
    return redirect("staff:quick-responses")
