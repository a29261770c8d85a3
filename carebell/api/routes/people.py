"""Patients, their contacts, contact points and preferences (SPEC §1, §3), through
carebell.people.actions: each change validates, saves, replans the patient's
messages and is audited there. Reading needs view_patients, changing edit_patients."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from carebell.api.common import (
    Id,
    In,
    PageParams,
    check_if_match,
    object_for,
    page_of,
    paginate,
    site_for,
    tagged,
    user_of,
    visible,
)
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.api.problems import ApiProblem
from carebell.core import senders
from carebell.core.vocab import ContactPointKind
from carebell.people import actions
from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient

router = Router(tags=["patients"])
VIEW, EDIT = "view_patients", "edit_patients"

PATIENT_FIELDS = [
    "external_id",
    "first_name",
    "last_name",
    "birth_date",
    "language",
    "last_visit_on",
    "consented_at",
    "is_active",
]
PatientOut = out_schema(
    "PatientOut", Patient, ["site", "source", *PATIENT_FIELDS, "created_at", "updated_at"]
)
PatientCreate, PatientChange = in_schemas(
    "Patient",
    Patient,
    PATIENT_FIELDS,
    required=("external_id", "first_name", "last_name"),
    create_extra={"site_id": (Id, ...)},
)

CONTACT_FIELDS = [
    "position",
    "relationship",
    "first_name",
    "last_name",
    "authority",
    "end_date",
    "resides_with_patient",
    "language",
    "time_zone",
]
ContactOut = out_schema("ContactOut", Contact, ["patient", *CONTACT_FIELDS, "updated_at"])
ContactCreate, ContactChange = in_schemas(
    "Contact",
    Contact,
    CONTACT_FIELDS,
    required=("position", "relationship", "first_name", "last_name"),
)

POINT_FIELDS = [
    "kind",
    "value",
    "raw_value",
    "is_valid",
    "verified_at",
    "verified_method",
    "opted_out_sms",
    "opted_out_call",
    "opted_out_email",
    "consent_sms",
    "consent_call",
]
PointOut = out_schema("ContactPointOut", ContactPoint, ["contact", *POINT_FIELDS, "updated_at"])
PointCreate, PointChange = in_schemas(
    "ContactPoint",
    ContactPoint,
    ["kind", "value", "opted_out_sms", "opted_out_call", "opted_out_email"],
    required=("kind", "value"),
)

PreferenceOut = out_schema(
    "PreferenceOut", ContactPreference, ["contact", "category", "value", "updated_at"]
)
_PREF_VALUES = tuple(v for v, _l in ContactPreference._meta.get_field("value").flatchoices)
Category = Literal[tuple(c for c, _l in ContactPreference._meta.get_field("category").flatchoices)]  # type: ignore[valid-type]


class PreferenceSet(In):
    value: Literal[_PREF_VALUES] = Field(description='"" clears the preference')  # type: ignore[valid-type]


class PatientFilter(Schema):
    site_id: Id | None = None
    external_id: str | None = Field(None, max_length=64)


def patient_for(request, patient_id: int, permission: str) -> Patient:
    return object_for(
        request, Patient.objects.select_related("site"), "site", patient_id, permission
    )


def contact_for(request, contact_id: int, permission: str) -> Contact:
    rows = Contact.objects.select_related("patient__site")
    return object_for(request, rows, "patient__site", contact_id, permission)


def point_for(request, point_id: int, permission: str) -> ContactPoint:
    rows = ContactPoint.objects.select_related("contact__patient__site")
    return object_for(request, rows, "contact__patient__site", point_id, permission)


# --- Patients ------------------------------------------------------------------------


@router.get("/patients", response=page_of(PatientOut), summary="Patients (view_patients)")
def list_patients(request: HttpRequest, page: PageParams, filters: Query[PatientFilter]):
    rows = visible(request, Patient.objects.all(), "site", VIEW)
    if filters.site_id:
        rows = rows.filter(site_id=filters.site_id)
    if filters.external_id:
        rows = rows.filter(external_id=filters.external_id)
    request.api_object_type = "people.patient"
    return paginate(rows, page)


@router.post("/patients", response={201: PatientOut}, summary="Add a patient (edit_patients)")
def create_patient(request: HttpRequest, body: PatientCreate, response: HttpResponse):
    site = site_for(request, body.site_id, EDIT)
    patient = Patient(site=site)
    apply(patient, body, creating=True)
    patient.source = "api"
    actions.save_patient(patient, by=user_of(request))
    response["Location"] = f"/api/v1/patients/{patient.pk}"
    return Status(201, tagged(response, PatientOut, patient))


@router.get("/patients/{patient_id}", response=PatientOut, summary="One patient")
def get_patient(request: HttpRequest, patient_id: Id, response: HttpResponse):
    return tagged(response, PatientOut, patient_for(request, patient_id, VIEW))


@router.patch("/patients/{patient_id}", response=PatientOut, summary="Change a patient")
def change_patient(
    request: HttpRequest, patient_id: Id, body: PatientChange, response: HttpResponse
):
    patient = patient_for(request, patient_id, EDIT)
    check_if_match(request, PatientOut, patient)
    apply(patient, body, creating=False)
    actions.save_patient(patient, by=user_of(request))
    return tagged(response, PatientOut, patient)


# --- Contacts ------------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/contacts", response=page_of(ContactOut), summary="A patient's contacts"
)
def list_contacts(request: HttpRequest, patient_id: Id, page: PageParams):
    patient = patient_for(request, patient_id, VIEW)
    return paginate(Contact.objects.filter(patient=patient), page)


@router.post("/patients/{patient_id}/contacts", response={201: ContactOut}, summary="Add a contact")
def create_contact(
    request: HttpRequest, patient_id: Id, body: ContactCreate, response: HttpResponse
):
    patient = patient_for(request, patient_id, EDIT)
    contact = Contact(patient=patient)
    apply(contact, body, creating=True)
    actions.save_contact(contact, by=user_of(request))
    response["Location"] = f"/api/v1/contacts/{contact.pk}"
    return Status(201, tagged(response, ContactOut, contact))


@router.get("/contacts/{contact_id}", response=ContactOut, summary="One contact")
def get_contact(request: HttpRequest, contact_id: Id, response: HttpResponse):
    return tagged(response, ContactOut, contact_for(request, contact_id, VIEW))


@router.patch("/contacts/{contact_id}", response=ContactOut, summary="Change a contact")
def change_contact(
    request: HttpRequest, contact_id: Id, body: ContactChange, response: HttpResponse
):
    contact = contact_for(request, contact_id, EDIT)
    check_if_match(request, ContactOut, contact)
    apply(contact, body, creating=False)
    actions.save_contact(contact, by=user_of(request))
    return tagged(response, ContactOut, contact)


@router.delete(
    "/contacts/{contact_id}", response={204: None}, summary="Remove a contact without history"
)
def delete_contact(request: HttpRequest, contact_id: Id):
    contact = contact_for(request, contact_id, EDIT)
    check_if_match(request, ContactOut, contact)
    actions.remove_contact(contact, by=user_of(request))
    return Status(204, None)


# --- Contact points ------------------------------------------------------------------


def _normalised(kind: str, value: str, region: str) -> str:
    try:
        if kind == ContactPointKind.EMAIL:
            return senders.normalise_email(value)
        return senders.normalise_phone(value, region or "US")
    except ValueError as error:
        raise ApiProblem(
            422, "invalid", "carebell refused the change.", errors=[("value", str(error))]
        ) from None


@router.get(
    "/contacts/{contact_id}/points",
    response=page_of(PointOut),
    summary="A contact's numbers and email",
)
def list_points(request: HttpRequest, contact_id: Id, page: PageParams):
    contact = contact_for(request, contact_id, VIEW)
    return paginate(ContactPoint.objects.filter(contact=contact), page)


@router.post(
    "/contacts/{contact_id}/points", response={201: PointOut}, summary="Add a phone number or email"
)
def create_point(request: HttpRequest, contact_id: Id, body: PointCreate, response: HttpResponse):
    contact = contact_for(request, contact_id, EDIT)
    point = ContactPoint(contact=contact)
    apply(point, body, creating=True)
    point.raw_value = body.value
    point.value = _normalised(point.kind, body.value, contact.patient.site.phone_region)
    actions.save_contact_point(point, by=user_of(request))
    response["Location"] = f"/api/v1/contact-points/{point.pk}"
    return Status(201, tagged(response, PointOut, point))


@router.get("/contact-points/{point_id}", response=PointOut, summary="One phone number or email")
def get_point(request: HttpRequest, point_id: Id, response: HttpResponse):
    return tagged(response, PointOut, point_for(request, point_id, VIEW))


@router.patch(
    "/contact-points/{point_id}",
    response=PointOut,
    summary="Change a number or email (a new value loses verification and consent)",
)
def change_point(request: HttpRequest, point_id: Id, body: PointChange, response: HttpResponse):
    point = point_for(request, point_id, EDIT)
    check_if_match(request, PointOut, point)
    apply(point, body, creating=False)
    if body.value is not None:
        point.raw_value = body.value
        point.value = _normalised(point.kind, body.value, point.contact.patient.site.phone_region)
    actions.save_contact_point(point, by=user_of(request))
    return tagged(response, PointOut, point)


@router.delete(
    "/contact-points/{point_id}", response={204: None}, summary="Remove a number without history"
)
def delete_point(request: HttpRequest, point_id: Id):
    point = point_for(request, point_id, EDIT)
    check_if_match(request, PointOut, point)
    actions.remove_contact_point(point, by=user_of(request))
    return Status(204, None)


# --- Preferences ---------------------------------------------------------------------


@router.get(
    "/contacts/{contact_id}/preferences",
    response=list[PreferenceOut],
    summary="A contact's preferences, one per category set",
)
def list_preferences(request: HttpRequest, contact_id: Id):
    contact = contact_for(request, contact_id, VIEW)
    return list(ContactPreference.objects.filter(contact=contact).order_by("category"))


@router.put(
    "/contacts/{contact_id}/preferences/{category}",
    response=PreferenceOut,
    summary="Set a contact's preference for one category",
)
def set_preference(request: HttpRequest, contact_id: Id, category: Category, body: PreferenceSet):
    contact = contact_for(request, contact_id, EDIT)
    return actions.set_preference(contact, category, body.value, by=user_of(request))
