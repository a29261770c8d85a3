from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "carebell.sites"
    label = "sites"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from carebell.sites.roles import ensure_roles

        # After auth's own handler has created this app's permissions.
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="carebell.roles")
