from django.apps import AppConfig


class Hl7Config(AppConfig):
    name = "carebell.interop.hl7"
    label = "interop_hl7"
