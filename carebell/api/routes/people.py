"""Patients, their contacts, contact points and preferences (SPEC §1, §3), through
carebell.people.actions: each change validates, saves, replans the patient's
messages and is audited there. Reading needs view_patients, changing edit_patients."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from carebell.api.common import Id, In, user_of
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.api.problems import ApiProblem
from carebell.api.resources import Resource, mount
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


PATIENTS = Resource(
    name="patient", plural="patients", collection="/patients", item="/patients/{patient_id}",
    model=Patient, out=PatientOut, create=PatientCreate, change=PatientChange,
    view=VIEW, edit=EDIT, save=actions.save_patient,
    new=lambda site: Patient(site=site, source="api"),
    filters=PatientFilter, related=(),
    summaries={"list": "Patients (view_patients)"},
)  # fmt: skip
CONTACTS = Resource(
    name="contact", plural="contacts", collection="/patients/{patient_id}/contacts",
    item="/contacts/{contact_id}",
    model=Contact, out=ContactOut, create=ContactCreate, change=ContactChange,
    view=VIEW, edit=EDIT, save=actions.save_contact, remove=actions.remove_contact,
    new=lambda patient: Contact(patient=patient),
    owner=PATIENTS.one, owner_link="patient",
    site_path="patient__site", related=("patient",),
    summaries={"list": "A patient's contacts", "delete": "Remove a contact without history"},
)  # fmt: skip


def _normalised(kind: str, value: str, region: str) -> str:
    try:
        if kind == ContactPointKind.EMAIL:
            return senders.normalise_email(value)
        return senders.normalise_phone(value, region or "US")
    except ValueError as error:
        raise ApiProblem(
            422, "invalid", "carebell refused the change.", errors=[("value", str(error))]
        ) from None


def _fill_point(point: ContactPoint, body, *, creating: bool) -> None:
    """The body's fields, the number or address as given kept raw and stored
    normalised for the site's region (a new value loses verification and consent)."""
    apply(point, body, creating=creating)
    if body.value is not None:
        point.raw_value = body.value
        point.value = _normalised(point.kind, body.value, point.contact.patient.site.phone_region)


POINTS = Resource(
    name="point", plural="points", collection="/contacts/{contact_id}/points",
    item="/contact-points/{point_id}",
    model=ContactPoint, out=PointOut, create=PointCreate, change=PointChange,
    view=VIEW, edit=EDIT, save=actions.save_contact_point, remove=actions.remove_contact_point,
    new=lambda contact: ContactPoint(contact=contact), fill=_fill_point,
    owner=CONTACTS.one, owner_link="contact",
    site_path="contact__patient__site", related=("contact__patient",),
    summaries={
        "list": "A contact's numbers and email",
        "create": "Add a phone number or email",
        "get": "One phone number or email",
        "change": "Change a number or email (a new value loses verification and consent)",
        "delete": "Remove a number without history",
    },
)  # fmt: skip
for resource in (PATIENTS, CONTACTS, POINTS):
    mount(router, resource, __name__)


def _patient_with_site(request: HttpRequest, pk: int, permission: str) -> Patient:
    """The patient a new record is added for, read with their site and its delivery
    settings in the same statement: what the record's entry point plans with."""
    return PATIENTS.one(request, pk, permission, related=("site__delivery",))


def held_by_a_patient(model) -> dict:
    """What a patient's records (appointments, prescriptions) share as resources: one
    is added naming its patient, at the patient's site, from the API; reading needs
    view_patients and changing edit_patients."""
    return {
        "owner": _patient_with_site,
        "owner_id": "patient_id",
        "related": (),  # the site's id is enough to check and to answer
        "new": lambda patient: model(site=patient.site, patient=patient, source="api"),
        "view": VIEW,
        "edit": EDIT,
    }


# --- Preferences ---------------------------------------------------------------------


@router.get(
    "/contacts/{contact_id}/preferences",
    response=list[PreferenceOut],
    summary="A contact's preferences, one per category set",
)
def list_preferences(request: HttpRequest, contact_id: Id):
    contact = CONTACTS.one(request, contact_id, VIEW)
    return list(ContactPreference.objects.filter(contact=contact).order_by("category"))


@router.put(
    "/contacts/{contact_id}/preferences/{category}",
    response=PreferenceOut,
    summary="Set a contact's preference for one category",
)
def set_preference(request: HttpRequest, contact_id: Id, category: Category, body: PreferenceSet):
    contact = CONTACTS.one(request, contact_id, EDIT)
    return actions.set_preference(contact, category, body.value, by=user_of(request))
