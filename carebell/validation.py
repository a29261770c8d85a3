"""`full_clean` as the entry points need it, less the queries it makes per row.

Django's `full_clean` asks the database three things an entry point often knows
already: that each foreign key's row exists (one query per key), that each CHECK
constraint holds (a savepoint and a SELECT each, on PostgreSQL), and that each
unique constraint is free (one query each). `clean` gives the same errors with:

- no query for a foreign key whose related row is loaded on the instance (it was
  read or saved in this transaction; the database's key still guards the insert);
- CHECK constraints of the plain forms carebell declares (`field__in=[…]`, as
  `fields.in_enum` writes them, and comparisons with a constant) judged in Python,
  as the database would (a NULL passes); any other condition is asked as before;
- no query for the unique constraints the caller names in `checked`: it looked the
  row up by those fields in this transaction (an upsert), so a clash is a race the
  database's constraint still refuses.
"""

from __future__ import annotations

import operator

from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db.models import CheckConstraint, Model, Q, UniqueConstraint

_COMPARE = {
    "exact": operator.eq,
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
    "in": lambda value, allowed: value in allowed,
}


def clean(obj: Model, *, checked: tuple[str, ...] = ()) -> None:
    """Validate `obj` as `obj.full_clean()` does (the same ValidationError)."""
    loaded = _loaded_relations(obj)
    errors: dict = {}
    try:
        obj.clean_fields(exclude=loaded)
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    try:
        obj.clean()
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    failed = {name for name in errors if name != NON_FIELD_ERRORS}
    try:
        obj.validate_unique(exclude=failed)
    except ValidationError as error:
        errors = error.update_error_dict(errors)
    failed = {name for name in errors if name != NON_FIELD_ERRORS}
    for model, constraints in obj.get_constraints():
        for constraint in constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.name in checked:
                continue
            try:
                _validate(constraint, model, obj, failed)
            except ValidationError as error:
                fields = getattr(constraint, "fields", ())
                if getattr(error, "code", None) == "unique" and len(fields) == 1:
                    errors.setdefault(fields[0], []).append(error)
                else:
                    errors = error.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def _loaded_relations(obj: Model) -> set[str]:
    loaded = set()
    for field in obj._meta.concrete_fields:
        if not field.many_to_one or not field.is_cached(obj):
            continue
        related = field.get_cached_value(obj)
        if (
            related is not None
            and not related._state.adding
            and related.pk is not None
            and related.pk == getattr(obj, field.attname)
        ):
            loaded.add(field.name)
    return loaded


def _validate(constraint, model, obj: Model, failed: set[str]) -> None:
    if isinstance(constraint, CheckConstraint):
        verdict = _judged(constraint.condition, obj, failed)
        if verdict is not None:
            if not verdict:
                raise ValidationError(
                    constraint.get_violation_error_message(),
                    code=constraint.violation_error_code,
                )
            return
    constraint.validate(model, obj, exclude=failed)


def _judged(condition: Q, obj: Model, failed: set[str]) -> bool | None:
    """True or False for a condition of ANDed `field__lookup=constant` terms; None
    for any other (the database is asked). A term on a field that failed its own
    validation is skipped, as Django skips the whole constraint then."""
    if condition.negated or condition.connector != Q.AND:
        return None
    verdict = True
    for child in condition.children:
        if not isinstance(child, tuple):
            return None
        name, wanted = child
        field_name, _, lookup = name.partition("__")
        lookup = lookup or "exact"
        compare = _COMPARE.get(lookup)
        if compare is None or "__" in lookup or hasattr(wanted, "resolve_expression"):
            return None
        try:
            field = obj._meta.get_field(field_name)
        except FieldDoesNotExist:  # a relation's field: the database is asked
            return None
        if field.name in failed:
            return True
        value = getattr(obj, field.attname)
        if value is None:
            continue  # NULL: the database's CHECK passes it (COALESCE(…, true))
        if not compare(value, wanted):
            verdict = False
    return verdict
