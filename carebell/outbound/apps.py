from django.apps import AppConfig


class OutboundConfig(AppConfig):
    name = "carebell.outbound"
    label = "outbound"
