from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "carebell.interop.fhir"
    label = "interop_fhir"
