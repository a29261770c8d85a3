"""Message formats (SPEC §6): the list with its filters, the editor with its
placeholder picker, preview on sample data and SMS counter, and the JSON preview the
editor's script asks as you type. Reading needs view_automated_messages; writing and
the live preview need manage_templates. Saving goes through
carebell.formats.service.save_format, which validates and swaps the format in use."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from carebell.core import placeholders, segments
from carebell.core.vocab import Channel, Kind
from carebell.formats import service
from carebell.messaging.models import MessageTemplate
from carebell.sites import access
from carebell.web.staff import guard
from carebell.web.staff.format_forms import FormatFilterForm, FormatForm, PreviewForm
from carebell.web.staff.forms import CHANNELS

EDIT = "manage_templates"
CHANNEL_LABELS = dict(CHANNELS)


def _formats(request: HttpRequest):
    return access.scope(MessageTemplate.objects.filter(site=request.site), request.user, "site")


@guard.requires("view_automated_messages")
def format_list(request: HttpRequest) -> HttpResponse:
    filters = FormatFilterForm(request.GET or None)
    formats = list(
        filters.filter(_formats(request)).order_by("kind", "channel", "language", "name")
    )
    for template in formats:
        template.channel_label = CHANNEL_LABELS.get(template.channel, template.channel)
    context = {"filters": filters, "formats": formats, "editable": guard.can(request, EDIT)}
    return render(request, "staff/format_list.html", context)


@guard.requires("view_automated_messages")
def format_edit(request: HttpRequest, format_id: int | None = None) -> HttpResponse:
    editable = guard.can(request, EDIT)
    if (request.method == "POST" or format_id is None) and not editable:
        raise PermissionDenied
    template = MessageTemplate(site=request.site)
    if format_id is not None:
        template = access.get_object_or_404_for(
            request.user, _formats(request), "site", pk=format_id
        )
    action = _action(request)
    if action == "restore" and template.pk:
        return _restore(request, template)
    if action == "load_default":
        form = _with_default(request, template)
    else:
        form = FormatForm(guard.posted(request), instance=template, site=request.site)
    if action == "save" and form.is_valid():
        saved = _save(request, form)
        if saved is not None:
            return redirect("staff:format", format_id=saved.pk)
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "template": template,
        "form": form,
        "editable": editable,
        "preview": _form_preview(request, form),
        "sample": service.sample_values(request.site),
    }
    return render(request, "staff/format_edit.html", context)


@guard.requires(EDIT)
@require_POST
def format_preview(request: HttpRequest) -> JsonResponse:
    """The editor's live preview: the posted fields rendered on sample data, with the
    SMS counter, the characters forcing UCS-2, errors (with line and column) and
    warnings. Bad fields answer 400 with their errors."""
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"field_errors": form.errors.get_json_data()}, status=400)
    return JsonResponse(preview_of(request.site, form.cleaned_data))


def preview_of(site, data: dict) -> dict:
    """The preview the editor shows, as plain data (the page and the JSON agree)."""
    delivery = _delivery(site)
    result = service.preview(
        data["channel"], data["kind"], data["language"],
        body=data.get("body") or "", subject=data.get("subject") or "",
        html_body=data.get("html_body") or "", site=site,
        restricted_words=getattr(delivery, "restricted_words", None) or (),
    )  # fmt: skip
    problems = result.pop("problems")
    # The HTML part goes only into a sandboxed frame (no scripts, forms or origin of
    # its own: see _format_preview.html), never into the page itself.
    result["html"] = result.get("html") or ""
    result["errors"] = [p for p in problems if p["severity"] == "error"]
    result["warnings"] = [
        p for p in problems if p["severity"] != "error" and p["code"] != "forces_ucs2"
    ]
    if data["channel"] == Channel.SMS:
        result["culprits"] = [
            {"char": c.char, "codepoint": f"U+{ord(c.char):04X}", "name": c.name,
             "replacement": c.replacement}
            for c in segments.ucs2_culprits(result["body"])
        ]  # fmt: skip
        result["smart_encoding"] = bool(getattr(delivery, "smart_encoding", False))
    result["placeholders"] = [
        {"token": f"#{name}#", "description": placeholders.CATALOGUE[name].description}
        for name in placeholders.allowed_for(Kind(data["kind"]))
    ]
    return result


def _delivery(site):
    try:
        return site.delivery
    except ObjectDoesNotExist:  # a site without delivery settings yet: defaults apply
        return None


def _action(request: HttpRequest) -> str:
    if request.method != "POST":
        return ""
    for name in ("restore", "load_default", "preview"):
        if name in request.POST:
            return name
    return "save"


def _with_default(request: HttpRequest, template: MessageTemplate) -> FormatForm:
    """The editor filled with carebell's default for the chosen kind, method and
    language ("Load default"); nothing is saved until Save."""
    form = PreviewForm(request.POST)
    initial = {name: request.POST.get(name) for name in FormatForm.Meta.fields}
    initial["is_group"] = "is_group" in request.POST
    initial["in_use"] = "in_use" in request.POST
    if form.is_valid():
        data = form.cleaned_data
        try:
            default = service.default_template(data["kind"], data["channel"], data["language"])
        except (KeyError, ValueError):
            messages.warning(request, _("carebell has no default for this kind and method."))
        else:
            initial.update(subject=default.subject, body=default.body, html_body=default.html_body)
            initial["name"] = initial["name"] or default.name
            messages.info(request, _("Default loaded. Review it, then save."))
    return FormatForm(None, instance=template, initial=initial, site=request.site)


def _restore(request: HttpRequest, template: MessageTemplate) -> HttpResponse:
    try:
        template.restore_default()
        service.save_format(template, by=request.user)
    except (KeyError, ValueError):
        messages.error(request, _("carebell has no default for this kind and method."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Default restored and saved."))
    return redirect("staff:format", format_id=template.pk)


def _save(request: HttpRequest, form: FormatForm) -> MessageTemplate | None:
    template = form.save(commit=False)
    try:
        warnings = service.save_format(template, by=request.user)
    except ValidationError as error:
        form.add_error(None, error)
        return None
    messages.success(request, _("%(name)s saved.") % {"name": template.name})
    for problem in warnings:
        messages.warning(request, problem.message)
    return template


def _form_preview(request: HttpRequest, form: FormatForm) -> dict | None:
    if form.is_bound:
        data = PreviewForm(form.data)
        return preview_of(request.site, data.cleaned_data) if data.is_valid() else None
    values = {name: form.initial.get(name, "") for name in ("subject", "body", "html_body")}
    instance = form.instance
    values["channel"] = form.initial.get("channel") or instance.channel or Channel.SMS.value
    values["kind"] = form.initial.get("kind") or instance.kind or Kind.GENERAL.value
    values["language"] = form.initial.get("language") or instance.language or "en"
    data = PreviewForm(values)
    return preview_of(request.site, data.cleaned_data) if data.is_valid() else None
