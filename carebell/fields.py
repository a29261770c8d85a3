"""Small model helpers shared by carebell's apps."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


def choices(enum: type[StrEnum]) -> list[tuple[str, str]]:
    """Django choices from one of carebell.core.vocab's enums."""
    return [(member.value, member.name.replace("_", " ").lower() or "blank") for member in enum]


def in_enum(field: str, enum: type[StrEnum]) -> models.Q:
    """A CHECK condition keeping `field` to the enum's values, in the database."""
    return models.Q(**{f"{field}__in": [member.value for member in enum]})


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
