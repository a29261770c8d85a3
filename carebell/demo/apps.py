from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "carebell.demo"
    label = "demo"
