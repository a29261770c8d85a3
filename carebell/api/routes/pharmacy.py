"""Prescriptions and fills (SPEC §5.2) through carebell.pharmacy.actions, which
validate, save, stop or replan the refill and ready messages and audit. Reading
needs view_patients, changing edit_patients."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status

from carebell.api.common import (
    Id,
    PageParams,
    check_if_match,
    object_for,
    page_of,
    paginate,
    tagged,
    user_of,
    visible,
)
from carebell.api.fields import apply, in_schemas, out_schema
from carebell.api.routes.people import EDIT, VIEW
from carebell.people.models import Patient
from carebell.pharmacy.actions import save_fill, save_prescription
from carebell.pharmacy.models import Fill, Prescription

router = Router(tags=["pharmacy"])

RX_FIELDS = [
    "rx_number",
    "drug_name",
    "ndc",
    "is_maintenance",
    "dea_schedule",
    "prescriber_name",
    "refills_authorized",
    "refills_remaining",
    "days_supply",
    "status",
    "written_on",
]
PrescriptionOut = out_schema(
    "PrescriptionOut",
    Prescription,
    ["site", "patient", "source", *RX_FIELDS, "created_at", "updated_at"],
)
PrescriptionCreate, PrescriptionChange = in_schemas(
    "Prescription",
    Prescription,
    RX_FIELDS,
    required=("rx_number", "drug_name"),
    create_extra={"patient_id": (Id, ...)},
)
STEP_TIMES = [
    "received_at",
    "insurance_approved_at",
    "verified_for_fill_at",
    "label_printed_at",
    "ready_at",
    "picked_up_at",
    "returned_to_stock_at",
]
FILL_FIELDS = ["fill_number", "filled_on", "days_supply", "step", *STEP_TIMES]
FillOut = out_schema("FillOut", Fill, ["prescription", *FILL_FIELDS, "created_at", "updated_at"])
FillCreate, FillChange = in_schemas("Fill", Fill, FILL_FIELDS, required=("filled_on",))


class PrescriptionFilter(Schema):
    site_id: Id | None = None
    patient_id: Id | None = None


def _prescription(request, rx_id: int, permission: str) -> Prescription:
    rows = Prescription.objects.select_related("site", "patient")
    return object_for(request, rows, "site", rx_id, permission)


def _fill(request, fill_id: int, permission: str) -> Fill:
    rows = Fill.objects.select_related("prescription__site")
    return object_for(request, rows, "prescription__site", fill_id, permission)


@router.get("/prescriptions", response=page_of(PrescriptionOut), summary="Prescriptions")
def list_prescriptions(request: HttpRequest, page: PageParams, filters: Query[PrescriptionFilter]):
    rows = visible(request, Prescription.objects.all(), "site", VIEW)
    if filters.site_id:
        rows = rows.filter(site_id=filters.site_id)
    if filters.patient_id:
        rows = rows.filter(patient_id=filters.patient_id)
    request.api_object_type = "pharmacy.prescription"
    return paginate(rows, page)


@router.post("/prescriptions", response={201: PrescriptionOut}, summary="Add a prescription")
def create_prescription(request: HttpRequest, body: PrescriptionCreate, response: HttpResponse):
    rows = Patient.objects.select_related("site")
    patient = object_for(request, rows, "site", body.patient_id, EDIT)
    prescription = Prescription(site=patient.site, patient=patient, source="api")
    apply(prescription, body, creating=True)
    save_prescription(prescription, by=user_of(request))
    response["Location"] = f"/api/v1/prescriptions/{prescription.pk}"
    return Status(201, tagged(response, PrescriptionOut, prescription))


@router.get("/prescriptions/{rx_id}", response=PrescriptionOut, summary="One prescription")
def get_prescription(request: HttpRequest, rx_id: Id, response: HttpResponse):
    return tagged(response, PrescriptionOut, _prescription(request, rx_id, VIEW))


@router.patch("/prescriptions/{rx_id}", response=PrescriptionOut, summary="Change a prescription")
def change_prescription(
    request: HttpRequest, rx_id: Id, body: PrescriptionChange, response: HttpResponse
):
    prescription = _prescription(request, rx_id, EDIT)
    check_if_match(request, PrescriptionOut, prescription)
    apply(prescription, body, creating=False)
    save_prescription(prescription, by=user_of(request))
    return tagged(response, PrescriptionOut, prescription)


@router.get(
    "/prescriptions/{rx_id}/fills", response=page_of(FillOut), summary="A prescription's fills"
)
def list_fills(request: HttpRequest, rx_id: Id, page: PageParams):
    prescription = _prescription(request, rx_id, VIEW)
    return paginate(Fill.objects.filter(prescription=prescription), page)


@router.post("/prescriptions/{rx_id}/fills", response={201: FillOut}, summary="Add a fill")
def create_fill(request: HttpRequest, rx_id: Id, body: FillCreate, response: HttpResponse):
    prescription = _prescription(request, rx_id, EDIT)
    fill = Fill(prescription=prescription)
    apply(fill, body, creating=True)
    save_fill(fill, by=user_of(request))
    response["Location"] = f"/api/v1/fills/{fill.pk}"
    return Status(201, tagged(response, FillOut, fill))


@router.get("/fills/{fill_id}", response=FillOut, summary="One fill")
def get_fill(request: HttpRequest, fill_id: Id, response: HttpResponse):
    return tagged(response, FillOut, _fill(request, fill_id, VIEW))


@router.patch(
    "/fills/{fill_id}",
    response=FillOut,
    summary="Change a fill (its step: ready, picked up … stops or starts its notices)",
)
def change_fill(request: HttpRequest, fill_id: Id, body: FillChange, response: HttpResponse):
    fill = _fill(request, fill_id, EDIT)
    check_if_match(request, FillOut, fill)
    apply(fill, body, creating=False)
    save_fill(fill, by=user_of(request))
    return tagged(response, FillOut, fill)
