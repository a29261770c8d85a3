from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "carebell.providers"
    label = "providers"
    verbose_name = "Delivery providers"
