"""What the REST API keeps: its tokens, the first answer to each idempotent POST,
and the per-token request counts its rate limit reads."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A per-user key to the API. It acts as its user and never as more: every
    route asks carebell.sites.access with `token.user`. The secret itself is shown
    once, when issued; only its SHA-256 is kept (a high-entropy secret needs no slow
    hash, and a digest lookup compares nothing byte by byte in Python)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="what the token is for")
    prefix = models.CharField(
        max_length=16, help_text="the secret's first characters, to tell tokens apart"
    )
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now) -> bool:
        """Neither revoked nor past its expiry, and its user still active."""
        if self.revoked_at is not None or not self.user.is_active:
            return False
        return self.expires_at is None or now < self.expires_at


class IdempotentRequest(models.Model):
    """The first answer to a POST carrying an Idempotency-Key, replayed for the same
    key for a day. A row without a status is a request still being answered: the
    unique constraint makes a concurrent retry wait for, then see, the first."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    created_at = models.DateTimeField(db_index=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="api_idempotency_once_per_token")
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code or 'pending'}"


class RateWindow(models.Model):
    """How many requests a token made in one fixed window (a minute). One row per
    token and window, counted up with a single upsert, so every web worker on every
    machine reads the same count."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "window_start"], name="api_rate_window_once")
        ]

    def __str__(self) -> str:
        return f"{self.window_start:%H:%M} {self.count}"
