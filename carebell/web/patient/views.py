"""Patient pages (SPEC §7.5): signed, expiring links, no login.

They show the minimum needed — a first name, a date, a site — and a wrong, altered or
expired token gets the same plain "link not valid" page as a missing one, so a page
never confirms that a message or a person exists. A confirm link's form answers only
what its page shows (visits not yet started); an answer it does not know is 400, and
one already given changes nothing and says so.
"""

from __future__ import annotations

import datetime as dt

from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from carebell import outbox
from carebell.appointments.models import Appointment
from carebell.core.vocab import AppointmentStatus, Channel, EntityType, Kind
from carebell.dispatch.rendering import LINK_SALT
from carebell.messaging.models import OutboxMessage
from carebell.sites.models import ReviewLink
from carebell.twoway import answers, consent

MAX_AGE = {
    "confirm": dt.timedelta(days=60),
    "review": dt.timedelta(days=90),
    "unsub": dt.timedelta(days=365),
}


def _message(purpose: str, token: str) -> OutboxMessage | None:
    try:
        data = signing.loads(token, salt=LINK_SALT[purpose], max_age=MAX_AGE[purpose])
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return OutboxMessage.objects.select_related("site").filter(id=data.get("m")).first()


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "patient/invalid.html", status=404)


@require_http_methods(["GET"])
def review(request: HttpRequest, token: str) -> HttpResponse:
    """Count the open (once) and send the patient on to the site's review page."""
    message = _message("review", token)
    link = message and ReviewLink.objects.filter(site=message.site, is_default=True).first()
    if not link:
        return _invalid(request)
    outbox.record_review_opened(message, timezone.now())
    return HttpResponseRedirect(link.url)


@csrf_exempt  # RFC 8058: mail clients POST here with no session or token of ours
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One-click email unsubscribe: a POST opts the address out at once; a GET (a
    person clicking the link) shows a button, so link scanners unsubscribe no one."""
    message = _message("unsub", token)
    if message is None or message.channel != Channel.EMAIL:
        return _invalid(request)
    if request.method == "POST":
        consent.opt_out_address(
            message.site_id,
            message.to_address,
            Channel.EMAIL,
            source="unsubscribe_link",
            now=timezone.now(),
        )
        return render(request, "patient/unsubscribed.html", {"site": message.site})
    return render(request, "patient/unsubscribe.html", {"site": message.site})


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """Confirm or cancel one appointment, several, or all those the message listed."""
    message = _message("confirm", token)
    if message is None or message.entity_type != EntityType.APPOINTMENT:
        return _invalid(request)
    now = timezone.now()
    appointments = _answerable(message, now)
    if not appointments:
        return _invalid(request)
    if request.method == "POST":
        return _answer(request, message, appointments, now)
    rows = [
        {
            "id": a.id,
            "first_name": a.patient.first_name,
            "starts": a.starts_at.astimezone(message.site.zone),
            "open": AppointmentStatus(a.status).is_open,
        }
        for a in appointments
    ]
    return render(request, "patient/confirm.html", {"site": message.site, "rows": rows})


def _answerable(message: OutboxMessage, now: dt.datetime) -> list[Appointment]:
    """The appointments a confirm link still speaks for: those its message listed that
    have not started. The page shows these and its form answers these, nothing else."""
    ids = message.entity_ids or [message.entity_id]
    return list(
        Appointment.objects.select_related("patient")
        .filter(site_id=message.site_id, id__in=ids, starts_at__gt=now)
        .order_by("starts_at", "id")
    )


def _answer(request: HttpRequest, message: OutboxMessage, appointments, now) -> HttpResponse:
    answer = answers.read_answer(request.POST.get("answer", ""))
    chosen = _chosen(request, appointments)
    if answer is None or not chosen:
        context = {"site": message.site, "no_visit": answer is not None}
        return render(request, "patient/bad_answer.html", context, status=400)
    answered = answers.answer_appointments(
        message.site,
        answer,
        [a.id for a in chosen],
        via="link",
        now=now,
        address=message.to_address,
    )
    context = {
        "site": message.site,
        "answer": answer.value,
        "count": len(answered),
        "repeated": all(a.repeated for a in answered),
        "confirmed": any(a.appointment.status == AppointmentStatus.CONFIRMED for a in answered),
        "refused": any(a.reply_kind == Kind.APPT_CANCEL_REFUSED for a in answered),
    }
    return render(request, "patient/answered.html", context)


def _chosen(request: HttpRequest, appointments: list[Appointment]) -> list[Appointment]:
    """The appointments the form picked: those ticked, or all of them when the page had
    nothing to tick (one visit). Ticked ids the link does not speak for are ignored."""
    ticked = set(request.POST.getlist("appointment"))
    if not ticked and "choosing" not in request.POST:
        return appointments
    return [a for a in appointments if str(a.id) in ticked]
