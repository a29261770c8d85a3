"""Quick responses (SPEC §7.4): a site's saved replies, with placeholders checked
when saved against what a reply may use (kind inbox_reply: the patient's names and
the site's), so a reply never fails for a typo at the moment it is sent."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from carebell.audit import trail
from carebell.core.vocab import Channel, Kind
from carebell.formats.service import as_validation_error, validate_template
from carebell.inbox import conversations
from carebell.inbox.models import QuickResponse
from carebell.sites import access
from carebell.sites.models import Site

#: Saving and deleting quick responses is managing the site's texts.
MANAGE = "manage_templates"
NAME_LIMIT = QuickResponse._meta.get_field("name").max_length
BODY_LIMIT = 1600


def list_quick_responses(site: Site, *, by) -> list[QuickResponse]:
    """The site's quick responses by name (for the reply box: work_inbox)."""
    conversations.require(by, site)
    return list(QuickResponse.objects.filter(site=site).order_by("name", "pk"))


def get_quick_response(site: Site, quick_response_id, *, by) -> QuickResponse:
    conversations.require(by, site, MANAGE)
    queryset = QuickResponse.objects.filter(site=site)
    return access.get_object_or_404_for(by, queryset, "site", pk=quick_response_id)


def check(site: Site, name: str, body: str) -> list:
    """The problems of a quick response (placeholders, length, restricted words as a
    warning), errors first; raises nothing."""
    return validate_template(
        Channel.SMS, Kind.INBOX_REPLY, "", body, site_name=site.name,
        restricted_words=site.delivery.restricted_words,
    )  # fmt: skip


def save_quick_response(
    site: Site,
    *,
    name: str,
    body: str,
    quick_response: QuickResponse | None = None,
    by,
    now: dt.datetime | None = None,
) -> tuple[QuickResponse, list]:
    """Create (`quick_response` None) or change one; returns it and the warnings.
    An empty or over-long name or body, a duplicate name, or a placeholder a reply
    may not use is a ValidationError and nothing is saved."""
    conversations.require(by, site, MANAGE)
    now = now or timezone.now()
    name, body = (name or "").strip(), (body or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors.setdefault("name", []).append("give the quick response a short name")
    elif len(name) > NAME_LIMIT:
        errors.setdefault("name", []).append(f"at most {NAME_LIMIT} characters")
    if len(body) > BODY_LIMIT or "\x00" in body:
        errors.setdefault("body", []).append(f"at most {BODY_LIMIT} characters")
    problems = check(site, name, body)
    invalid = as_validation_error(problems)
    if invalid is not None:
        for field, messages in invalid.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    previous = None
    if quick_response is None:
        quick_response = QuickResponse(site=site)
    else:
        previous = {"name": quick_response.name, "body": quick_response.body}
    quick_response.name, quick_response.body = name, body
    try:
        with transaction.atomic():
            quick_response.save()
            changed = [k for k, v in (previous or {}).items() if getattr(quick_response, k) != v]
            trail.record(by, "create" if previous is None else "change", quick_response, at=now,
                         detail={"fields": changed} if previous is not None else {})  # fmt: skip
    except IntegrityError:
        raise ValidationError({"name": "another quick response has this name"}) from None
    return quick_response, [p for p in problems if not p.is_error]


def delete_quick_response(quick_response: QuickResponse, *, by, now=None) -> None:
    conversations.require(by, quick_response.site, MANAGE)
    with transaction.atomic():
        trail.record(by, "delete", quick_response, at=now or timezone.now())
        quick_response.delete()
