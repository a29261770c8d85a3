from django.apps import AppConfig


class FormatsConfig(AppConfig):
    """Message formats: default templates, validation, preview (SPEC §6)."""

    name = "carebell.formats"
    label = "formats"
    verbose_name = "Message formats"
