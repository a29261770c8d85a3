from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "carebell.messaging"
    label = "messaging"

    def ready(self) -> None:
        from anymail.signals import tracking

        from carebell.webhooks.views import email_event_received

        tracking.connect(email_event_received, dispatch_uid="carebell.email_events")
