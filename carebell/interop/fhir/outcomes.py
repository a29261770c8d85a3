"""FHIR errors and the OperationOutcome every error answers with."""

from __future__ import annotations

#: HTTP status → the OperationOutcome issue code it usually carries.
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    500: "exception",
}


class FhirError(Exception):
    """A request FHIR refuses: its HTTP status and a sentence for the integrator.
    `expression` names the element at fault (FHIRPath), when known."""

    def __init__(self, status: int, message: str, *, code: str = "", expression: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ISSUE_CODES.get(status, "processing")
        self.expression = expression

    def outcome(self) -> dict:
        return operation_outcome(self.message, code=self.code, expression=self.expression)


def operation_outcome(
    message: str, *, code: str = "processing", severity: str = "error", expression: str = ""
) -> dict:
    issue = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def not_found(resource_type: str, fhir_id: str) -> FhirError:
    return FhirError(404, f"{resource_type}/{fhir_id} is not known.")


def invalid(message: str, expression: str = "") -> FhirError:
    return FhirError(400, message, expression=expression)


def unprocessable(message: str, expression: str = "") -> FhirError:
    """Valid FHIR that carebell cannot take (a rule of carebell's, a missing link)."""
    return FhirError(422, message, code="business-rule", expression=expression)
