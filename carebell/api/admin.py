"""The REST API's records in the admin: tokens, the first answers to idempotent
POSTs, and the rate limit's counts.

Tokens belong to users, not sites, so only superusers see them (`site_path` None).
A token is issued in the staff app, where its secret is shown once; here it is read
and may be revoked (carebell.api.tokens, the one way in). Its hash is never shown,
nor the body of a stored answer (it may hold patient data the API returned).
"""

from __future__ import annotations

from django.contrib import admin

from carebell.api import tokens
from carebell.api.models import ApiToken, IdempotentRequest, RateWindow
from carebell.sites.admin_scoping import AppendOnlyAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(AppendOnlyAdmin):
    site_path = None
    list_display = ("name", "prefix", "user", "created_at", "expires_at", "revoked_at",
                    "last_used_at")  # fmt: skip
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    exclude = ("secret_hash",)
    actions = ("revoke",)

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset) -> None:
        revoked = sum(tokens.revoke(token, by=request.user) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).")

    def has_revoke_permission(self, request) -> bool:
        return request.user.is_superuser


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(AppendOnlyAdmin):
    site_path = None
    list_display = ("created_at", "token", "key", "status_code")
    list_filter = ("status_code",)
    search_fields = ("key", "token__prefix")
    list_select_related = ("token",)
    exclude = ("body", "headers")


@admin.register(RateWindow)
class RateWindowAdmin(AppendOnlyAdmin):
    site_path = None
    list_display = ("window_start", "token", "count")
    search_fields = ("token__prefix",)
    list_select_related = ("token",)
