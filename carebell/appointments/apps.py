from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "carebell.appointments"
    label = "appointments"
