"""API schemas made from the models' own field definitions, so the OpenAPI document
states what the database and `full_clean` will accept: lengths, ranges, choices,
nullability. Each resource names its fields; nothing is exposed by default."""

from __future__ import annotations

import datetime as dt
import decimal
from enum import Enum
from typing import Annotated, Any, Literal

from django.db import models
from ninja import Field, Schema
from pydantic import AwareDatetime, PlainSerializer, WithJsonSchema, create_model

from carebell.api.common import In, Out

#: A local time of day ("08:00"): JSON Schema's "time" format demands a UTC offset,
#: which a delivery window in the site's own zone does not have.
LocalTime = Annotated[
    dt.time,
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
         "description": "a local time of day, HH:MM"}
    ),
]  # fmt: skip

_INT_RANGES = {
    models.PositiveSmallIntegerField: (0, 32767),
    models.SmallIntegerField: (-32768, 32767),
    models.PositiveIntegerField: (0, 2147483647),
    models.IntegerField: (-2147483648, 2147483647),
    models.BigIntegerField: (-(2**63), 2**63 - 1),
    models.BigAutoField: (1, 2**63 - 1),
    models.ForeignKey: (1, 2**63 - 1),
    models.OneToOneField: (1, 2**63 - 1),
}


def _int_range(field) -> tuple[int, int]:
    for kind in type(field).__mro__:
        if kind in _INT_RANGES:
            return _INT_RANGES[kind]
    return _INT_RANGES[models.BigIntegerField]


def python_type(field, json_type: Any = None, *, for_input: bool = False) -> Any:
    """The pydantic type of one model field."""
    if json_type is not None:
        kind = json_type
    elif field.choices:
        values = tuple(str(value) for value, _label in field.flatchoices)
        if for_input and not field.blank:
            values = tuple(v for v in values if v != "")
        kind = Literal[values]  # type: ignore[valid-type]
    elif isinstance(field, models.BooleanField):
        kind = bool
    elif isinstance(field, models.DateTimeField):
        kind = AwareDatetime
    elif isinstance(field, models.DateField):
        kind = dt.date
    elif isinstance(field, models.TimeField):
        kind = LocalTime
    elif isinstance(field, models.DecimalField):
        kind = Annotated[
            decimal.Decimal,
            Field(max_digits=field.max_digits, decimal_places=field.decimal_places, ge=0),
        ]
    elif isinstance(field, (models.IntegerField, models.ForeignKey, models.AutoField)):
        low, high = _int_range(field)
        kind = Annotated[int, Field(ge=low, le=high)]
    elif isinstance(field, models.GenericIPAddressField):
        kind = str
    elif isinstance(field, (models.CharField, models.TextField)):
        limits = {"max_length": field.max_length} if field.max_length else {}
        if for_input and not field.blank:
            limits["min_length"] = 1
        kind = Annotated[str, Field(**limits)] if limits else str
    else:
        kind = Any
    return kind | None if field.null else kind


def attribute(field) -> str:
    return field.attname  # "site_id" for a foreign key


def out_schema(name: str, model, names: list[str], *, json_types=None, extra=None) -> type[Out]:
    """What the API answers for `model`: `id` and the named fields, all present."""
    json_types = json_types or {}
    spec = {}
    for field_name in ["id", *names]:
        field = model._meta.get_field(field_name)
        spec[attribute(field)] = (python_type(field, json_types.get(field_name)), ...)
    spec.update(extra or {})
    return create_model(name, __base__=Out, **spec)


def in_schemas(
    name: str, model, names: list[str], *, required=(), json_types=None, create_extra=None
) -> tuple[type[In], type[In]]:
    """(create, change) bodies for `model`: on create the `required` fields must be
    given and others take the model's default; on change every field is optional."""
    json_types = json_types or {}
    create, change = dict(create_extra or {}), {}
    for field_name in names:
        field = model._meta.get_field(field_name)
        kind = python_type(field, json_types.get(field_name), for_input=True)
        default = ... if field_name in required else _default(field)
        create[attribute(field)] = (kind, default)
        change[attribute(field)] = (kind, None)  # absent: unchanged; null only where allowed
    return (
        create_model(f"{name}Create", __base__=In, **create),
        create_model(f"{name}Change", __base__=In, **change),
    )


def _default(field):
    if field.has_default():
        value = field.get_default()
        if isinstance(value, (list, dict)):
            # Validated, so that a nested schema's default is an instance of it (a
            # bare {} where a schema is declared makes pydantic warn on dumping).
            return Field(default_factory=field.get_default, validate_default=True)
        return value.value if isinstance(value, Enum) else value
    if field.null:
        return None
    text = isinstance(field, (models.CharField, models.TextField))
    return "" if text and field.blank else ...


def apply(obj, body: Schema, *, creating: bool) -> list[str]:
    """Set the body's fields on `obj`; on change only those the client sent (a null
    sent for a non-null field is refused by the entry point's validation)."""
    data = body.model_dump(exclude_unset=not creating)
    for name, value in data.items():
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC)  # stored and answered in UTC
        setattr(obj, name, value)
    return list(data)
