from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "carebell.inbox"
    label = "inbox"
