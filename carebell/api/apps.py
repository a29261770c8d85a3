from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "carebell.api"
    label = "api"
