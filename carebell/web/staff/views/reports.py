"""Reports (per site and period): messages by channel, kind and status per day; the
delivery rate; confirmations, cancellations and no-shows; opt-outs; SMS segments and
their estimated cost; the top failure and block reasons. Each is a bar chart drawn
as SVG on the server (with a title, a description and a table beside it) and a CSV
download. Counts only, no patient data: viewing needs view_queue."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carebell.audit import trail
from carebell.web.staff import guard
from carebell.web.staff.report_data import Figures, Period, figures
from carebell.web.staff.templatetags.staff import KIND_LABELS, STATUS_LABELS

PERMISSION = "view_queue"
DEFAULT_DAYS = 14
MAX_DAYS = 92


class PeriodForm(forms.Form):
    first = forms.DateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    last = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last and first > last:
            raise forms.ValidationError(_("The period must start before it ends."))
        if first and last and (last - first).days >= MAX_DAYS:
            raise forms.ValidationError(
                _("Choose at most %(days)d days at a time.") % {"days": MAX_DAYS}
            )
        return data


def _period(request: HttpRequest) -> tuple[PeriodForm, Period]:
    site = request.site
    today = timezone.now().astimezone(site.zone).date()
    default = {"first": today - dt.timedelta(days=DEFAULT_DAYS - 1), "last": today}
    form = PeriodForm(request.GET if "first" in request.GET or "last" in request.GET else None,
                      initial=default)  # fmt: skip
    chosen = form.cleaned_data if form.is_bound and form.is_valid() else default
    return form, Period(chosen["first"], chosen["last"], site.zone)


@guard.requires(PERMISSION)
def reports(request: HttpRequest) -> HttpResponse:
    form, period = _period(request)
    data = figures(request.site, period)
    trail.record(request.user, "list", object_type="messaging.outboxmessage",
                 site_id=request.site.pk, detail={"report": "all"})  # fmt: skip
    context = {"form": form, "period": period, "sections": _sections(data), "query": _query(period)}
    return render(request, "staff/reports.html", context)


@guard.requires(PERMISSION)
def report_csv(request: HttpRequest, name: str) -> HttpResponse:
    builder = CSV_REPORTS.get(name)
    if builder is None:
        raise Http404
    _form, period = _period(request)
    header, rows = builder(figures(request.site, period))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"carebell-{name}-{period.first}-{period.last}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    trail.record(request.user, "export", object_type="messaging.outboxmessage",
                 site_id=request.site.pk, detail={"report": name})  # fmt: skip
    return response


def _query(period: Period) -> str:
    return f"first={period.first.isoformat()}&last={period.last.isoformat()}"


# --- The charts ----------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    tick: bool


CHART_HEIGHT = 140
CHART_LEFT = 40
CHART_TOP = 12


def bar_chart(key: str, title: str, desc: str, points, *, show=str) -> dict:
    """An SVG bar chart's geometry: one bar per (day, value), the tallest at full
    height; every day's bar carries its own <title>, every few days a date label."""
    values = [value for _day, value in points]
    top = max(values, default=0) or 1
    step = max(8, min(36, 640 // max(len(points), 1)))
    every = -(-52 // step)  # a date label needs about 52 units of width
    bars = []
    for index, (day, value) in enumerate(points):
        height = CHART_HEIGHT * float(value) / float(top)
        bars.append(
            Bar(
                x=CHART_LEFT + index * step + 1,
                y=CHART_TOP + CHART_HEIGHT - height,
                width=step - 2,
                height=height,
                label=day.strftime("%d %b"),
                value=show(value),
                tick=index % every == 0,
            )
        )
    return {
        "key": key,
        "title": title,
        "desc": desc,
        "bars": bars,
        "width": CHART_LEFT + len(points) * step + 4,
        "height": CHART_TOP + CHART_HEIGHT + 24,
        "baseline": CHART_TOP + CHART_HEIGHT,
        "label_y": CHART_TOP + CHART_HEIGHT + 16,
        "top": show(top) if values and max(values) else "0",
        "top_y": CHART_TOP + 4,
        "left": CHART_LEFT,
        "half": step / 2 - 1,
    }


def _rate(attempted: int, delivered: int) -> float:
    return round(100 * delivered / attempted, 1) if attempted else 0.0


def _sections(data: Figures) -> list[dict]:
    days = len(data.period.days)
    per_day = data.per_day(lambda row: row[4])
    delivery = data.delivery()
    attempted = sum(a for _d, a, _del in delivery)
    delivered = sum(d for _day, _a, d in delivery)
    segments = data.sms_segments()
    total_segments = sum(v for _d, v in segments)
    appointments = [(day, data.appointments[day]) for day in data.period.days]
    opt_outs = data.opt_outs_per_day()
    return [
        {
            "name": "messages",
            "title": _("Messages"),
            "summary": _("%(count)d messages planned in %(days)d days.")
            % {"count": sum(v for _d, v in per_day), "days": days},
            "chart": bar_chart("messages", _("Messages per day"),
                               _("Messages planned each day, whatever their status."), per_day),
            "tables": [
                (_("By channel"), [(c, n) for c, n in data.totals_by(1)]),
                (_("By kind"), [(KIND_LABELS.get(k, k), n) for k, n in data.totals_by(2)]),
                (_("By status"), [(STATUS_LABELS.get(s, s), n) for s, n in data.totals_by(3)]),
            ],
            "columns": [_("Messages")],
            "rows": [(d, v) for d, v in per_day],
        },
        {
            "name": "delivery",
            "title": _("Delivery rate"),
            "summary": _("%(rate)s%% delivered: %(delivered)d of %(attempted)d messages handed "
                         "to a provider.")
            % {"rate": _rate(attempted, delivered), "delivered": delivered, "attempted": attempted},
            "chart": bar_chart("delivery", _("Delivery rate per day"),
                               _("Delivered messages as a percentage of those sent to a provider."),
                               [(d, _rate(a, dl)) for d, a, dl in delivery],
                               show=lambda v: f"{v:g}%"),
            "columns": [_("Attempted"), _("Delivered"), _("Rate")],
            "rows": [(d, a, dl, f"{_rate(a, dl):g}%" if a else "—") for d, a, dl in delivery],
        },
        {
            "name": "appointments",
            "title": _("Confirmations, cancellations and no-shows"),
            "summary": _("%(c)d confirmed, %(x)d cancelled, %(n)d no-shows.") % {
                "c": sum(v["confirmations"] for _d, v in appointments),
                "x": sum(v["cancellations"] for _d, v in appointments),
                "n": sum(v["no_shows"] for _d, v in appointments),
            },
            "chart": bar_chart("appointments", _("Confirmations per day"),
                               _("Appointments confirmed each day."),
                               [(d, v["confirmations"]) for d, v in appointments]),
            "columns": [_("Confirmed"), _("Cancelled"), _("No-shows")],
            "rows": [(d, v["confirmations"], v["cancellations"], v["no_shows"])
                     for d, v in appointments],
        },
        {
            "name": "opt_outs",
            "title": _("Opt-outs"),
            "summary": _("%(count)d opt-outs.") % {"count": sum(v for _d, v in opt_outs)},
            "chart": bar_chart("opt_outs", _("Opt-outs per day"),
                               _("Numbers and addresses that asked to receive no more."), opt_outs),
            "columns": [_("Opt-outs")],
            "rows": opt_outs,
        },
        {
            "name": "sms",
            "title": _("SMS segments and cost"),
            "summary": _("%(segments)d segments sent, about %(cost)s at %(price)s a segment.")
            % {"segments": total_segments, "cost": data.cost(total_segments), "price": data.price},
            "chart": bar_chart("sms", _("SMS segments per day"),
                               _("Segments of the texts handed to a provider each day."), segments),
            "columns": [_("Segments"), _("Cost")],
            "rows": [(d, v, data.cost(v)) for d, v in segments],
        },
        {
            "name": "reasons",
            "title": _("Top failure and block reasons"),
            "summary": "",
            "tables": [
                (_("Failures (provider error code)"),
                 [(code or _("(no code)"), n) for code, n in data.failures]),
                (_("Blocked before sending"),
                 [(reason.replace("_", " ") or "—", n) for reason, n in data.blocks]),
            ],
        },
    ]  # fmt: skip


# --- CSV -----------------------------------------------------------------------------


def _csv_messages(data: Figures):
    return ["day", "channel", "kind", "status", "messages", "segments"], data.messages


def _csv_delivery(data: Figures):
    rows = [(d, a, dl, _rate(a, dl)) for d, a, dl in data.delivery()]
    return ["day", "attempted", "delivered", "delivery_rate_percent"], rows


def _csv_appointments(data: Figures):
    rows = [
        (day, v["confirmations"], v["cancellations"], v["no_shows"])
        for day, v in data.appointments.items()
    ]
    return ["day", "confirmations", "cancellations", "no_shows"], rows


def _csv_opt_outs(data: Figures):
    return ["day", "channel", "opt_outs"], data.opt_outs


def _csv_sms(data: Figures):
    rows = [(d, v, data.cost(v)) for d, v in data.sms_segments()]
    return ["day", "segments", "estimated_cost"], rows


def _csv_reasons(data: Figures):
    rows = [("failure", code, n) for code, n in data.failures]
    rows += [("blocked", reason, n) for reason, n in data.blocks]
    return ["type", "reason", "messages"], rows


CSV_REPORTS = {
    "messages": _csv_messages,
    "delivery": _csv_delivery,
    "appointments": _csv_appointments,
    "opt_outs": _csv_opt_outs,
    "sms": _csv_sms,
    "reasons": _csv_reasons,
}
