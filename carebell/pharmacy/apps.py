from django.apps import AppConfig


class PharmacyConfig(AppConfig):
    name = "carebell.pharmacy"
    label = "pharmacy"
