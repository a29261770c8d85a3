from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "carebell.sites"
    label = "sites"
