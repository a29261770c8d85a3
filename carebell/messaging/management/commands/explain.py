"""`carebell explain`: what was sent, what was not, and why."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carebell.appointments.models import Appointment
from carebell.audit import trail
from carebell.messaging.models import OutboxMessage
from carebell.people.models import Patient
from carebell.planning import explain


class Command(BaseCommand):
    help = "Explain the messages of a patient, an appointment or one message."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--patient", type=int, help="Patient id")
        which.add_argument("--appointment", type=int, help="Appointment id")
        which.add_argument("--message", type=int, help="Outbox message id")

    def handle(self, *args, patient, appointment, message, **options) -> None:
        if message is not None:
            obj = _get(OutboxMessage, message)
            lines = explain.describe_message(obj)
        elif appointment is not None:
            obj = _get(Appointment, appointment)
            lines = list(explain.explain_appointment(obj))
        else:
            obj = _get(Patient, patient)
            lines = list(explain.explain_patient(obj))
        trail.record(None, "explain", obj, detail={"system": "cli"})
        self.stdout.write("\n".join(lines))


def _get(model, pk: int):
    try:
        return model.objects.get(pk=pk)
    except model.DoesNotExist:
        raise CommandError(f"no {model._meta.verbose_name} with id {pk}") from None
