"""The staff frame: the header (site switcher, navigation by permission, account)."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from carebell.sites import access
from carebell.web.staff.forms import CHANNELS
from carebell.web.staff.preference_forms import CATEGORY_LABELS, PREFERENCE_LABELS

register = template.Library()

#: (url name, label, the permission that shows it; None: every signed-in user).
NAVIGATION = [
    ("staff:home", _("Today"), None),
    ("staff:rules", _("Automated messages"), "view_automated_messages"),
    ("staff:delivery-settings", _("Delivery settings"), "view_automated_messages"),
    ("staff:formats", _("Message formats"), "view_automated_messages"),
    ("staff:contact-preferences", _("Contact preferences"), "edit_delivery_settings"),
    ("staff:reports", _("Reports"), "view_queue"),
    ("staff:queue", _("Queue"), "view_queue"),
    ("staff:patients", _("Patients"), "view_patients"),
    ("staff:consent-ledger", _("Consent ledger"), "view_patients"),
    ("staff:inbox", _("Inbox"), "work_inbox"),
    ("staff:notifications", _("Notifications"), "work_inbox"),
    ("staff:audit", _("Audit log"), "view_audit"),
    ("staff:webhooks", _("Webhooks"), "manage_integrations"),
]


@register.inclusion_tag("staff/_header.html", takes_context=True)
def staff_header(context):
    request = context["request"]
    site = getattr(request, "site", None)
    user = request.user
    current = getattr(request.resolver_match, "view_name", "")
    held = access.held_at(user, {p for _n, _l, p in NAVIGATION if p}, site)
    links = [
        {"url": name, "label": label, "current": name == current}
        for name, label, permission in NAVIGATION
        if permission is None or permission in held
    ]
    for link in links:
        if link["url"] == "staff:notifications":
            from carebell.web.staff.views.notifications import unread_count

            link["count"] = unread_count(user, site)
        if link["url"] == "staff:inbox":  # conversations with texts this person has not seen
            from carebell.inbox.conversations import unread_conversations

            link["count"] = unread_conversations(site, user)
    return {
        "request": request,
        "site": site,
        "sites": list(access.sites_for(user)) if site else [],
        "links": links,
        "user": user,
    }


@register.filter
def zone_name(site) -> str:
    return getattr(site, "time_zone", "")


KIND_LABELS = {
    "staff_notice": _("Notice to staff"),
    "appt_confirmation": _("Appointment confirmation request"),
    "appt_reminder": _("Appointment reminder"),
    "appt_cancel_ack": _("Cancellation acknowledgement"),
    "appt_cancel_refused": _("Late cancellation refused"),
    "appt_rescheduled": _("Reschedule notice"),
    "appt_no_show": _("No-show follow-up"),
    "recall": _("Recall"),
    "rx_ready": _("Ready for pickup"),
    "rx_pickup_reminder": _("Pickup reminder"),
    "rx_pickup_confirmation": _("Pickup confirmation"),
    "refill_due": _("Refill due"),
    "refill_past_due": _("Refill past due"),
    "refill_ask_prescriber": _("Refill: ask your prescriber"),
    "review_request": _("Review request"),
    "birthday": _("Birthday greeting"),
    "welcome": _("Welcome"),
    "general": _("General message"),
    "verification": _("Verification code"),
    "inbox_reply": _("Staff reply"),
    "keyword_reply": _("Automatic answer to a keyword"),
}


@register.filter
def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " "))


STATUS_LABELS = {
    "scheduled": _("Scheduled"),
    "queued": _("Queued"),
    "sending": _("Sending"),
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "undelivered": _("Undelivered"),
    "failed": _("Failed"),
    "cancelled": _("Cancelled"),
    "blocked": _("Blocked"),
}


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


#: Why a message was blocked, for where only its block code is at hand (a summary's
#: counts); a message's own reasons, where stored, say it in more detail.
BLOCK_LABELS = {
    "opted_out": _("The contact opted out of this way of sending."),
    "no_consent": _("No consent is recorded and the site requires opt-in."),
    "unverified": _("The contact point is not verified and the site sends only to verified ones."),
    "word_restricted": _("The message contains a restricted word."),
    "ineligible": _(
        "Nobody may receive it: no contact with a preference, authority and contact point for it."
    ),
    "cap": _("A frequency cap for the contact point was reached."),
}


@register.filter
def block_label(block: str) -> str:
    return BLOCK_LABELS.get(block, block.replace("_", " "))


CHANNEL_LABELS = dict(CHANNELS)


@register.filter
def channel_label(channel: str) -> str:
    """The channel in words ("Text message (SMS)"), not its code in capitals."""
    return CHANNEL_LABELS.get(channel, channel)


@register.filter
def category_label(category: str) -> str:
    return CATEGORY_LABELS.get(category, category.replace("_", " "))


@register.filter
def preference_label(preference: str) -> str:
    return PREFERENCE_LABELS.get(preference, preference)
