from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "carebell.messaging"
    label = "messaging"
