"""Bulk contact preferences (SPEC §3.4). On a clinic site, "Assign Contact
Preferences": an option or (skip) per category for the contacts in position #1 whose
preference is blank, counted first, then applied. On a pharmacy site, "Patient
defaults": the channel sets per category, when they apply, "Update all" (counted
first) and the per-patient "Apply default settings" (staff:apply-defaults).

The decisions are carebell.core.defaults'; the writes go through
carebell.people.actions.apply_preferences, which replans every touched patient in
the same transaction. Site-wide changes need edit_delivery_settings; applying the
defaults to one patient needs edit_patients."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from carebell.core import defaults as rules
from carebell.core.channels import ContactFacts, ContactPointFacts
from carebell.core.vocab import Category, ContactPointKind, Preference, SiteKind
from carebell.people import actions
from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
from carebell.sites import access
from carebell.sites.actions import save_delivery_settings
from carebell.sites.models import DeliverySettings
from carebell.web.staff import guard
from carebell.web.staff.preference_forms import (
    CATEGORY_LABELS,
    CLINIC_CATEGORIES,
    PHARMACY_CATEGORIES,
    PREFERENCE_LABELS,
    ClinicDefaultsForm,
    PharmacyDefaultsForm,
    saved_defaults,
)

SITE_WIDE = "edit_delivery_settings"


@guard.requires(SITE_WIDE)
def contact_preferences(request: HttpRequest) -> HttpResponse:
    if request.site.kind == SiteKind.PHARMACY:
        return _pharmacy(request)
    return _clinic(request)


# --- Clinic: Assign Contact Preferences ----------------------------------------------


def _clinic(request: HttpRequest) -> HttpResponse:
    form = ClinicDefaultsForm(guard.posted(request))
    counted = None
    if request.method == "POST" and form.is_valid():
        options = form.options()
        if not any(options.values()):
            form.add_error(None, _("Choose an option for at least one category."))
        elif "apply" in request.POST:
            result = rules.assign_clinic_defaults(load_facts(request.site), options)
            applied = _store(request, result.changes)
            messages.success(request, _applied_text(applied, CLINIC_CATEGORIES))
            return redirect("staff:contact-preferences")
        else:
            counted = rules.assign_clinic_defaults(load_facts(request.site), options)
    context = {
        "form": form,
        "counted": counted and _count_rows(counted.counts, CLINIC_CATEGORIES, form.options()),
        "total": counted and sum(counted.counts.values()),
    }
    return render(request, "staff/preferences_clinic.html", context)


# --- Pharmacy: Patient defaults ------------------------------------------------------


def _pharmacy(request: HttpRequest) -> HttpResponse:
    delivery = _delivery(request.site)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    form = PharmacyDefaultsForm(
        request.POST if action == "save" else None, delivery=delivery
    )  # fmt: skip
    counted = None
    if action == "save" and form.is_valid():
        delivery.patient_defaults = form.defaults()
        delivery.apply_defaults_on_consent = form.cleaned_data["apply_on"] == "consent"
        try:
            save_delivery_settings(delivery, by=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Patient defaults saved."))
            return redirect("staff:contact-preferences")
    elif action in ("count_all", "update_all"):
        defaults = saved_defaults(delivery)
        if not defaults:
            messages.error(request, _("Save at least one default first."))
            return redirect("staff:contact-preferences")
        result = rules.update_all(load_facts(request.site), defaults)
        if action == "update_all":
            applied = _store(request, result.changes)
            messages.success(request, _applied_text(applied, PHARMACY_CATEGORIES))
            return redirect("staff:contact-preferences")
        counted = _count_rows(result.counts, PHARMACY_CATEGORIES, defaults)
    context = {
        "form": form,
        "counted": counted,
        "total": counted and sum(row["count"] for row in counted),
        "has_defaults": bool(saved_defaults(delivery)),
    }
    return render(request, "staff/preferences_pharmacy.html", context)


@guard.requires("edit_patients")
@require_POST
def apply_defaults(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The pharmacy's "Apply default settings" for one patient: each category takes
    the site's default, except that the patient's own "no contact" stays."""
    patients = Patient.objects.filter(site=request.site)
    patient = access.get_object_or_404_for(request.user, patients, "site", pk=patient_id)
    defaults = saved_defaults(_delivery(request.site))
    if not defaults:
        messages.error(request, _("This site has no patient defaults yet."))
        return _back(request, patient)
    changes = [
        change
        for contact in load_facts(request.site, patient_ids=[patient.pk])
        for change in rules.pharmacy_changes(contact, defaults)
    ]
    applied = _store(request, changes)
    if applied:
        messages.success(request, _applied_text(applied, PHARMACY_CATEGORIES))
    else:
        messages.info(request, _("This patient's preferences already follow the defaults."))
    return _back(request, patient)


# --- Shared --------------------------------------------------------------------------


def load_facts(site, *, patient_ids=None) -> list[ContactFacts]:
    """The position #1 contacts of the site's active patients, with their
    preferences and contact values, as the rules core reads them (three queries)."""
    contacts = Contact.objects.filter(patient__site=site, patient__is_active=True, position=1)
    if patient_ids is not None:
        contacts = contacts.filter(patient_id__in=patient_ids)
    points: dict[int, dict[str, ContactPointFacts]] = {}
    values = ContactPoint.objects.filter(contact__in=contacts).order_by("pk")
    for contact_id, kind, value, valid in values.values_list(
        "contact_id", "kind", "value", "is_valid"
    ):
        points.setdefault(contact_id, {}).setdefault(kind, ContactPointFacts(value, valid))
    preferences: dict[int, dict[Category, Preference]] = {}
    rows = ContactPreference.objects.filter(contact__in=contacts)
    for contact_id, category, value in rows.values_list("contact_id", "category", "value"):
        preferences.setdefault(contact_id, {})[Category(category)] = Preference(value or "")
    return [
        _facts(pk, patient_id, position, points.get(pk, {}), preferences.get(pk, {}))
        for pk, patient_id, position in contacts.order_by("pk").values_list(
            "pk", "patient_id", "position"
        )
    ]


def _facts(pk, patient_id, position, points, preferences) -> ContactFacts:
    return ContactFacts(
        pk,
        patient_id,
        position,
        preferences=preferences,
        mobile=points.get(ContactPointKind.MOBILE),
        home=points.get(ContactPointKind.HOME),
        email=points.get(ContactPointKind.EMAIL),
    )


def _store(request: HttpRequest, changes) -> dict[str, int]:
    triples = [(ch.contact_id, ch.category, ch.new.value) for ch in changes]
    return actions.apply_preferences(request.site, triples, by=request.user)


def _delivery(site) -> DeliverySettings:
    try:
        return site.delivery
    except ObjectDoesNotExist:
        return DeliverySettings.defaults_for(site)


def _count_rows(counts, categories, options) -> list[dict]:
    return [
        {
            "category": CATEGORY_LABELS[category],
            "option": PREFERENCE_LABELS.get(options.get(category))
            if options.get(category)
            else None,
            "count": counts.get(category, 0),
        }
        for category in categories
    ]


def _applied_text(applied: dict[str, int], categories) -> str:
    if not applied:
        return _("Nothing to change: every contact already has these preferences.")
    parts = [
        ngettext("%(category)s: %(count)d contact", "%(category)s: %(count)d contacts", n)
        % {"category": CATEGORY_LABELS[c], "count": n}
        for c in categories
        if (n := applied.get(c.value, 0))
    ]
    return _("Preferences set. %(parts)s.") % {"parts": "; ".join(parts)}


def _back(request: HttpRequest, patient: Patient) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=False
    ):
        return redirect(target)
    try:
        return redirect(reverse("staff:patient", args=[patient.pk]))
    except NoReverseMatch:
        return redirect("staff:home")
