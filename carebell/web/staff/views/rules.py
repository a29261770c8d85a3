"""Automated messages (SPEC §5): the list with enable/disable switches, and the
editor with its seven-day forecast. Viewing needs view_automated_messages; any
change needs edit_automated_messages. Every save replans (engine.save_rule)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.messaging.models import AutomatedMessage, MessageTemplate
from carebell.sites import access
from carebell.web.staff import engine, guard
from carebell.web.staff.rule_forms import TIMED_KINDS, NewRuleForm, RuleForm


def _rules(request: HttpRequest):
    site_rules = AutomatedMessage.objects.filter(site=request.site)
    return access.scope(site_rules, request.user, "site")


@guard.requires("view_automated_messages")
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(_rules(request).order_by("kind", "name"))
    in_use = set(
        MessageTemplate.objects.filter(site=request.site, in_use=True).values_list(
            "kind", "channel"
        )
    )
    for rule in rules:
        rule.formats = sorted(channel for kind, channel in in_use if kind == rule.kind)
    context = {"rules": rules, "editable": guard.can(request, "edit_automated_messages")}
    return render(request, "staff/rule_list.html", context)


@guard.requires("edit_automated_messages")
def rule_new(request: HttpRequest) -> HttpResponse:
    """Create an automated message, switched off, and open it in the editor."""
    form = NewRuleForm(guard.posted(request), site=request.site)
    if request.method == "POST" and form.is_valid():
        rule = form.rule()
        try:
            engine.save_rule(rule, by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            created = _("%(name)s was created, switched off.") % {"name": rule.name}
            then = _("Set its timing and channels, then enable it.")
            messages.success(request, f"{created} {then}")
            return redirect("staff:rule", rule_id=rule.pk)
    return render(request, "staff/rule_new.html", {"form": form})


@guard.requires("edit_automated_messages")
@require_POST
def rule_toggle(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = access.get_object_or_404_for(request.user, _rules(request), "site", pk=rule_id)
    rule.enabled = request.POST.get("enabled") == "1"
    replanned = engine.save_rule(rule, by=request.user)
    text = _("%(name)s is now enabled.") if rule.enabled else _("%(name)s is now disabled.")
    messages.success(request, f"{text % {'name': rule.name}} {_replanned_text(replanned)}")
    return redirect("staff:rules")


@guard.requires("view_automated_messages")
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = access.get_object_or_404_for(request.user, _rules(request), "site", pk=rule_id)
    editable = guard.can(request, "edit_automated_messages")
    if request.method == "POST" and not editable:
        raise PermissionDenied
    form = RuleForm(guard.posted(request), rule=rule)
    forecast = None
    if request.method == "POST" and form.is_valid():
        candidate = form.apply()
        if "preview" in request.POST:
            forecast = engine.forecast(candidate)
        else:
            try:
                replanned = engine.save_rule(candidate, by=request.user)
                engine.use_formats(candidate, form.chosen_formats(), by=request.user)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                saved = _("%(name)s saved.") % {"name": candidate.name}
                messages.success(request, f"{saved} {_replanned_text(replanned)}")
                return redirect("staff:rule", rule_id=rule.pk)
    elif request.method == "GET":
        forecast = engine.forecast(rule)
    if forecast is not None:
        trail.record(request.user, "list", object_type="messaging.outboxmessage",
                     site_id=request.site.pk, detail={"forecast": rule.pk})  # fmt: skip
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "rule": rule,
        "form": form,
        "editable": editable,
        "timed": rule.kind in TIMED_KINDS,
        "forecast": forecast,
        "previewing": request.method == "POST",
    }
    return render(request, "staff/rule_edit.html", context)


def _replanned_text(count: int) -> str:
    if not count:
        return _("No pending message needed planning again.")
    return ngettext(
        "%(count)d pending message was planned again.",
        "%(count)d pending messages were planned again.",
        count,
    ) % {"count": count}
