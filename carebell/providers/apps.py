from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "carebell.providers"
    label = "providers"
    verbose_name = "Delivery providers"

    def ready(self) -> None:
        from carebell.providers import checks  # noqa: F401 - registers the deploy check
