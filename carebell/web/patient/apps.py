from django.apps import AppConfig


class PatientPagesConfig(AppConfig):
    """Installed so that Django finds the pages' templates (templates/patient/)."""

    name = "carebell.web.patient"
    label = "web_patient"
    verbose_name = "Patient pages"
