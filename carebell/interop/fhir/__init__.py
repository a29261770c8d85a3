"""FHIR R4 in and out: the /fhir/R4 endpoint."""
