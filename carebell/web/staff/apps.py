from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "carebell.web.staff"
    label = "staff"
    verbose_name = "Staff app"
