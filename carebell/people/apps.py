from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "carebell.people"
    label = "people"
