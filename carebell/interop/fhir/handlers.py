"""One handler per resource type: where its rows live, who may see them, which
search parameters it answers, how it renders and how it writes. The registry at the
bottom is the one list of what /fhir/R4 serves; the CapabilityStatement is made
from it (carebell.interop.fhir.capability)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from carebell.appointments.models import Appointment
from carebell.interop.fhir import ingest, parsing, render
from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.interop.fhir.outcomes import FhirError, invalid, not_found
from carebell.interop.fhir.records import HELD_PREFIX
from carebell.interop.fhir.search import DateRange, parse_date, parse_reference, parse_token
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Contact, Patient
from carebell.pharmacy.models import Fill, Prescription
from carebell.prepared import Prepared
from carebell.sites import access


@dataclass
class Context:
    """One request's actor and clock, and (in a transaction) the resources its
    earlier entries made, by fullUrl."""

    user: object
    now: dt.datetime
    site_header: str = ""
    created: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: References already resolved in this request (a Bundle names one patient often).
    resolved: dict[tuple, tuple] = field(default_factory=dict)

    @property
    def writer(self) -> ingest.Writer:
        return ingest.Writer(self.user, self.now)


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: str  # FHIR search param type: token, reference, date
    documentation: str


_ID = SearchParam("_id", "token", "The logical id.")
_IDENTIFIER = SearchParam("identifier", "token", "An identifier: system|value, |value or value.")
_LAST_UPDATED = SearchParam("_lastUpdated", "date", "When the resource last changed.")
_PATIENT = SearchParam("patient", "reference", "The patient (Patient/id or id).")
_STATUS = SearchParam("status", "token", "The status (comma-separated for several).")


class Handler:
    resource_type = ""
    model = None
    site_path = "site"
    patient_path = "patient_id"
    read_permission = "view_patients"
    write_permission = "edit_patients"
    writable = True
    params: tuple[SearchParam, ...] = (_ID, _IDENTIFIER, _LAST_UPDATED)
    date_field = ""

    # Reading -------------------------------------------------------------------------

    def queryset(self) -> QuerySet:
        return self.model.objects.all()

    def rows(self, user) -> QuerySet:
        return access.scope(self.queryset(), user, self.site_path)

    def referenced(self) -> QuerySet:
        """The rows a reference resolves to: what writing needs, not rendering."""
        return self.queryset()

    def find(self, user, fhir_id: str, *, referenced: bool = False):
        """(row, record) of `fhir_id` among the user's rows (`referenced`: as a
        reference resolves, `self.referenced()`); 404 otherwise."""
        numeric = fhir_id.isdigit() and len(fhir_id) <= 18
        if numeric:
            found = _RECORDS_BY_ID.objects(self.resource_type, fhir_id, int(fhir_id))
        else:
            found = _RECORDS.objects(self.resource_type, fhir_id)
        record = next((r for r in found if r.fhir_id == fhir_id), None)
        if record is not None and record.object_id is None:
            if access.scope(FhirRecord.objects.filter(pk=record.pk), user, "site").exists():
                return None, record
            raise not_found(self.resource_type, fhir_id)
        if record is not None:
            pk = record.object_id  # a held one, booked
        elif not numeric or found:
            raise not_found(self.resource_type, fhir_id)  # that row is known by its held id
        else:
            pk = int(fhir_id)
        if referenced:
            row = self._referenced_row(user, pk)
        else:
            row = self.rows(user).filter(pk=pk).first()
        if row is None:
            raise not_found(self.resource_type, fhir_id)
        return row, record

    def _referenced_row(self, user, pk: int):
        """`self.referenced()` row `pk` if the user may see it, as access.scope
        filters it, with the SQL compiled once per kind of user (a write resolves a
        reference or two per request)."""
        everything = getattr(user, "is_superuser", False) and user.is_active
        if not everything and (
            self.site_path is None or not getattr(user, "is_authenticated", False)
        ):
            return None  # access.scope: none
        key = (self.resource_type, everything)
        query = _REFERENCED.get(key)
        if query is None:
            query = _REFERENCED[key] = Prepared(
                lambda pk, user_id=None: access.scope(
                    self.referenced(), _Staff(user_id, everything), self.site_path
                ).filter(pk=pk).order_by("pk")[:1],
                -7_200_001, *(() if everything else (-7_200_002,)),
            )  # fmt: skip
        return query.first(pk) if everything else query.first(pk, user.pk)

    def render(self, row, record) -> dict:
        raise NotImplementedError

    def common(self, row, record) -> dict:
        from carebell.interop.fhir.records import last_updated_of, version_of

        fhir_id = record.fhir_id if record is not None else str(row.pk)
        return render._clean({
            "resourceType": self.resource_type,
            "id": fhir_id,
            "meta": render.meta(version_of(record, row), last_updated_of(record, row)),
            "identifier": render.identifiers(record),
        })  # fmt: skip

    # Searching -----------------------------------------------------------------------

    def filter(self, rows: QuerySet, name: str, values: list[str], ctx: Context) -> QuerySet:
        for value in values:
            rows = self.filter_one(rows, name, value)
        return rows

    def filter_one(self, rows: QuerySet, name: str, value: str) -> QuerySet:
        if name == "_id":
            ids = [v for v in value.split(",") if v.isdigit() and len(v) <= 18]
            return rows.filter(pk__in=ids)
        if name == "identifier":
            return rows.filter(pk__in=self.identified(value))
        if name == "_lastUpdated":
            return _in_range(rows, "updated_at", parse_date(value))
        if name == "patient":
            return rows.filter(**{self.patient_path: _reference_id(value, "Patient")})
        if name == "date":
            return _in_range(rows, self.date_field, parse_date(value))
        if name == "status":
            return rows.filter(**{f"{self.status_field}__in": self.statuses(value)})
        raise invalid(f"Unsupported search parameter {name!r}.")

    def identified(self, value: str):
        token = parse_token(value)
        matches = FhirIdentifier.objects.filter(resource_type=self.resource_type,
                                                value=token.value)  # fmt: skip
        if token.system is not None:
            matches = matches.filter(system=token.system)
        return matches.filter(record__object_id__isnull=False).values("record__object_id")

    status_field = "status"
    status_map: dict[str, list[str]] = {}

    def statuses(self, value: str) -> list[str]:
        wanted = []
        for code in value.split(","):
            code = code.split("|")[-1]
            if code not in self.status_map:
                raise invalid(f"{code[:40]!r} is not a {self.resource_type} status carebell knows.")
            wanted += self.status_map[code]
        return wanted

    # Writing -------------------------------------------------------------------------

    def site_for_create(self, data, ctx: Context):
        """The site of a new resource: its patient's."""
        return self.resolve_patient(data.patient, ctx).site

    def resolve_patient(self, reference, ctx: Context) -> Patient:
        row, _record = resolve(PATIENT, reference, ctx)
        return row

    def write(self, data, row, ctx: Context, site):
        """Save `data` over `row` (None: a new one, at `site`) and return the row."""
        raise NotImplementedError


_RECORDS = Prepared(
    lambda resource_type, fhir_id: FhirRecord.objects.filter(
        fhir_id=fhir_id, resource_type=resource_type
    )[:2],
    "\x00type", "\x00id",
)  # fmt: skip
_RECORDS_BY_ID = Prepared(
    lambda resource_type, fhir_id, object_id: FhirRecord.objects.filter(
        Q(fhir_id=fhir_id) | Q(object_id=object_id), resource_type=resource_type
    )[:2],
    "\x00type", "\x00id", -7_200_003,
)  # fmt: skip
_REFERENCED: dict[tuple[str, bool], Prepared] = {}


@dataclass(frozen=True)
class _Staff:
    """What access.scope reads of a user, to compile its filter once."""

    pk: int
    is_superuser: bool
    is_active: bool = True
    is_authenticated: bool = True


def _reference_id(value: str, resource_type: str) -> int:
    fhir_id = parse_reference(value, resource_type)
    return int(fhir_id) if fhir_id.isdigit() and len(fhir_id) <= 18 else -1


def _in_range(rows: QuerySet, field_name: str, span: DateRange) -> QuerySet:
    if span.lower is not None:
        rows = rows.filter(**{f"{field_name}__gte": span.lower})
    if span.upper is not None:
        rows = rows.filter(**{f"{field_name}__lt": span.upper})
    return rows


def resolve(handler: Handler, reference: parsing.Reference, ctx: Context):
    """The row a body's reference names, among the user's; 422 when unknown."""
    key = (handler.resource_type, reference.fhir_id, reference.urn)
    if key not in ctx.resolved:
        ctx.resolved[key] = _resolve(handler, reference, ctx)
    return ctx.resolved[key]


def _resolve(handler: Handler, reference: parsing.Reference, ctx: Context):
    fhir_id = reference.fhir_id
    if reference.urn:
        made = ctx.created.get(reference.urn)
        if made is None or made[0] != handler.resource_type:
            raise FhirError(422, f"{reference.urn[:60]} names no {handler.resource_type} of "
                            "this transaction.")  # fmt: skip
        fhir_id = made[1]
    try:
        row, record = handler.find(ctx.user, fhir_id, referenced=True)
    except FhirError:
        raise FhirError(422, f"{handler.resource_type}/{fhir_id} is not known.") from None
    if row is None:
        raise FhirError(422, f"{handler.resource_type}/{fhir_id} is not booked yet.")
    return row, record


# The resource types ------------------------------------------------------------------------


class PatientHandler(Handler):
    resource_type = "Patient"
    model = Patient
    params = (_ID, _IDENTIFIER, _LAST_UPDATED)

    def queryset(self):
        return Patient.objects.select_related("site").prefetch_related("contacts__points")

    def referenced(self):
        # With the delivery settings: the write's replan reads the site from here.
        return Patient.objects.select_related("site__delivery")

    def render(self, row, record):
        return render.patient(row, self.common(row, record))

    def site_for_create(self, data, ctx: Context):
        return choose_site(ctx)

    def write(self, data, row, ctx, site):
        return ingest.write_patient(data, row, site, ctx.writer)


class RelatedPersonHandler(Handler):
    resource_type = "RelatedPerson"
    model = Contact
    site_path = "patient__site"
    params = (_ID, _IDENTIFIER, _LAST_UPDATED, _PATIENT)

    def queryset(self):
        return Contact.objects.exclude(relationship="self").prefetch_related("points")

    def render(self, row, record):
        return render.related_person(row, self.common(row, record))

    def write(self, data, row, ctx, site):
        patient = self.resolve_patient(data.patient, ctx)
        return ingest.write_related_person(data, row, patient, ctx.writer)


class AppointmentHandler(Handler):
    resource_type = "Appointment"
    model = Appointment
    date_field = "starts_at"
    params = (
        *(_ID, _IDENTIFIER, _LAST_UPDATED, _PATIENT, _STATUS),
        SearchParam("date", "date", "The start (eq, lt, le, gt, ge; a held one has none)."),
    )
    status_map = {
        "booked": ["booked", "confirmed", "cancel_requested"], "arrived": ["arrived"],
        "checked-in": ["arrived"], "fulfilled": ["completed"], "cancelled": ["cancelled"],
        "noshow": ["no_show"], "entered-in-error": ["deleted"],
        "proposed": [], "pending": [], "waitlist": [],
    }  # fmt: skip

    def queryset(self):
        return Appointment.objects.all()

    def render(self, row, record):
        if row is None:
            return render.held_appointment(record, self.common_held(record))
        status = record.held_status if record is not None else ""
        return render.appointment(row, self.common(row, record), status)

    def common_held(self, record):
        return render._clean({
            "resourceType": "Appointment",
            "id": record.fhir_id,
            "meta": render.meta(record.version, record.last_updated),
            "identifier": render.identifiers(record),
        })  # fmt: skip

    def held(self, user, params: dict[str, list[str]]) -> QuerySet:
        """Held (proposed, pending, waitlisted) appointments matching `params`."""
        rows = access.scope(
            FhirRecord.objects.filter(resource_type="Appointment", object_id__isnull=True),
            user, "site",
        ).prefetch_related("identifiers")  # fmt: skip
        for name, values in params.items():
            for value in values:
                rows = self._held_filter(rows, name, value)
        return rows

    def _held_filter(self, rows, name, value):
        if name == "date":
            return rows.none()
        if name == "_id":
            return rows.filter(fhir_id__in=value.split(","))
        if name == "identifier":
            token = parse_token(value)
            found = Q(identifiers__value=token.value)
            if token.system is not None:
                found &= Q(identifiers__system=token.system)
            return rows.filter(found)
        if name == "_lastUpdated":
            return _in_range(rows, "last_updated", parse_date(value))
        if name == "patient":
            return rows.filter(held_patient_id=_reference_id(value, "Patient"))
        if name == "status":
            self.statuses(value)  # refuses unknown codes
            return rows.filter(held_status__in=value.split(","))
        return rows

    def write(self, data, row, ctx, site):
        patient = self.resolve_patient(data.patient, ctx)
        return ingest.write_appointment(data, row, patient, ctx.writer)


class MedicationRequestHandler(Handler):
    resource_type = "MedicationRequest"
    model = Prescription
    params = (_ID, _IDENTIFIER, _LAST_UPDATED, _PATIENT, _STATUS)
    status_map = {
        "active": ["active"], "completed": ["expired"],
        "stopped": ["inactive", "transferred"], "on-hold": ["inactive"],
        "cancelled": ["inactive"], "draft": ["inactive"],
        "entered-in-error": ["inactive"], "unknown": ["inactive"],
    }  # fmt: skip

    def render(self, row, record):
        status = record.held_status if record is not None else ""
        return render.medication_request(row, self.common(row, record), status)

    def write(self, data, row, ctx, site):
        patient = self.resolve_patient(data.patient, ctx)
        return ingest.write_prescription(data, row, patient, ctx.writer)


class MedicationDispenseHandler(Handler):
    resource_type = "MedicationDispense"
    model = Fill
    site_path = "prescription__site"
    patient_path = "prescription__patient_id"
    params = (_ID, _IDENTIFIER, _LAST_UPDATED, _PATIENT, _STATUS)
    status_field = "step"
    status_map = {
        "preparation": ["received", "insurance_approved", "verified_for_fill", "label_printed"],
        "in-progress": ["ready"], "completed": ["picked_up"],
        "cancelled": ["returned_to_stock"], "stopped": [], "declined": [], "on-hold": [],
        "entered-in-error": [], "unknown": [],
    }  # fmt: skip

    def queryset(self):
        return Fill.objects.select_related("prescription")

    def render(self, row, record):
        status = record.held_status if record is not None else ""
        return render.medication_dispense(row, self.common(row, record), status)

    def site_for_create(self, data, ctx):
        return resolve(MEDICATION_REQUEST, data.prescription, ctx)[0].site

    def write(self, data, row, ctx, site):
        rx, _ = resolve(MEDICATION_REQUEST, data.prescription, ctx)
        patient = self.resolve_patient(data.patient, ctx)
        if rx.patient_id != patient.pk:
            raise FhirError(422, "The dispense's subject is not its prescription's patient.")
        return ingest.write_fill(data, row, rx, ctx.writer)


class CommunicationHandler(Handler):
    """The messages carebell sent (or plans to send): outbox rows, read-only."""

    resource_type = "Communication"
    model = OutboxMessage
    read_permission = "view_queue"
    writable = False
    date_field = "sent_at"
    params = (_ID, _LAST_UPDATED, _PATIENT, _STATUS,
              SearchParam("sent", "date", "When it was handed to the provider."))  # fmt: skip
    status_map = render.MESSAGE_STATUSES_OF

    def queryset(self):
        return OutboxMessage.objects.select_related("contact")

    def filter_one(self, rows, name, value):
        return super().filter_one(rows, "date" if name == "sent" else name, value)

    def render(self, row, record):
        return render.communication(row, self.common(row, record))


def choose_site(ctx: Context):
    """The site a new patient goes to: the one named by `X-Carebell-Site` (a site id
    the user was granted), else the user's only site."""
    if ctx.site_header:
        if not ctx.site_header.isdigit():
            raise invalid("X-Carebell-Site must be a site id.")
        site = access.sites_for(ctx.user).filter(pk=int(ctx.site_header)).first()
        if site is None:
            raise FhirError(422, f"Site {ctx.site_header[:20]} is not one of yours.")
        return site
    if getattr(user := ctx.user, "is_authenticated", False) and user.is_active:
        superuser = bool(user.is_superuser)
        found = _SITES[superuser].objects(*(() if superuser else (user.pk,)))
    else:
        found = []
    if len(found) != 1:
        raise FhirError(
            422, "You may write to several sites: name one with the X-Carebell-Site header."
            if found else "Your account has no site to write to."
        )  # fmt: skip
    return found[0]


#: A user's first two sites (access.sites_for) with their delivery settings (the
#: write's replan reads them from here): for staff, and for a superuser.
_SITES = {
    False: Prepared(
        lambda user_id: access.sites_for(_Staff(user_id, False)).select_related("delivery")[:2],
        -7_200_004,
    ),
    True: Prepared(lambda: access.sites_for(_Staff(None, True)).select_related("delivery")[:2]),
}


PATIENT = PatientHandler()
MEDICATION_REQUEST = MedicationRequestHandler()
#: What /fhir/R4 serves, in the order the CapabilityStatement lists it.
HANDLERS: dict[str, Handler] = {
    h.resource_type: h
    for h in (
        PATIENT,
        RelatedPersonHandler(),
        AppointmentHandler(),
        MEDICATION_REQUEST,
        MedicationDispenseHandler(),
        CommunicationHandler(),
    )
}
HELD_ID_PREFIX = HELD_PREFIX
