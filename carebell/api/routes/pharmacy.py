"""Prescriptions and fills (SPEC §5.2) through carebell.pharmacy.actions, which
validate, save, stop or replan the refill and ready messages and audit. Reading
needs view_patients, changing edit_patients."""

from __future__ import annotations

from ninja import Router, Schema

from carebell.api.common import Id
from carebell.api.fields import in_schemas, out_schema
from carebell.api.resources import Resource, mount
from carebell.api.routes.people import EDIT, VIEW, held_by_a_patient
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


PRESCRIPTIONS = Resource(
    name="prescription", plural="prescriptions", collection="/prescriptions",
    item="/prescriptions/{rx_id}",
    model=Prescription, out=PrescriptionOut, create=PrescriptionCreate, change=PrescriptionChange,
    save=save_prescription, filters=PrescriptionFilter, **held_by_a_patient(Prescription),
)  # fmt: skip
FILLS = Resource(
    name="fill", plural="fills", collection="/prescriptions/{rx_id}/fills", item="/fills/{fill_id}",
    model=Fill, out=FillOut, create=FillCreate, change=FillChange,
    view=VIEW, edit=EDIT, save=save_fill,
    new=lambda prescription: Fill(prescription=prescription),
    owner=PRESCRIPTIONS.one, owner_link="prescription",
    site_path="prescription__site", related=("prescription",),
    summaries={
        "list": "A prescription's fills",
        "change": "Change a fill (its step: ready, picked up … stops or starts its notices)",
    },
)  # fmt: skip
for resource in (PRESCRIPTIONS, FILLS):
    mount(router, resource, __name__)
