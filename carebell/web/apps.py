from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "carebell.web"
    label = "web"
    verbose_name = "Web pages"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from carebell.web.sign_in import audit_failure

        user_login_failed.connect(audit_failure, dispatch_uid="carebell.sign_in_failures")
