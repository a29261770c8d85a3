from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "carebell.audit"
    label = "audit"
