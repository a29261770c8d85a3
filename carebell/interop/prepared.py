"""Querysets compiled once, run again with other values.

A feed asks the same few questions for every message (its sender, the patient by
external id, the patient's contacts …), and Django spends most of such a question
writing its SQL again. `Prepared` lets Django write it once per database — from a
queryset built with sample values — and from then on runs that SQL with the real
values, making the model instances (select_related included) as Django would: its
converters, its `from_db`, its populators of related objects. What is asked, and
what comes back, is exactly the queryset's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    params: tuple  # the sample queryset's, constants kept, samples replaced per call
    #: (position in params, index of the value, the adapter's type Django wrapped the
    #: sample in — psycopg's Int8 for a bigint column — or None).
    slots: tuple[tuple[int, int, type | None], ...]
    for_update: bool
    converters: list  # Django's: (column, ([functions], expression))
    model: type
    start: int  # the model's columns in a row: [start:end]
    end: int
    names: list[str]
    populators: list  # select_related's


class Prepared:
    """`build(*values)` returns the queryset; `samples` are values of the right types
    that appear nowhere else in its SQL (each is found among its parameters and
    replaced there by the value given to `rows`)."""

    def __init__(self, build: Callable[..., QuerySet], *samples) -> None:
        self.build = build
        self.samples = samples
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, *values, using: str = DEFAULT_DB_ALIAS) -> list:
        connection = connections[using]
        compiled = self._compiled.get(using) or self._compile(using)
        if compiled.for_update and connection.get_autocommit():  # as Django refuses it
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        for position, index, wrap in compiled.slots:
            params[position] = values[index] if wrap is None else wrap(values[index])
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        out = []
        for row in fetched:
            if compiled.converters:
                row = list(row)
                for column, (functions, expression) in compiled.converters:
                    value = row[column]
                    for convert in functions:
                        value = convert(value, expression, connection)
                    row[column] = value
            obj = compiled.model.from_db(using, compiled.names, row[compiled.start : compiled.end])
            for populator in compiled.populators:
                populator.populate(row, obj)
            out.append(obj)
        return out

    def first(self, *values, using: str = DEFAULT_DB_ALIAS):
        found = self.rows(*values, using=using)
        return found[0] if found else None

    def _compile(self, using: str) -> _Compiled:
        queryset = self.build(*self.samples)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        slots = []
        for position, param in enumerate(params):
            for index, sample in enumerate(self.samples):
                if isinstance(param, type(sample)) and sample == param:
                    wrap = None if type(param) is type(sample) else type(param)
                    slots.append((position, index, wrap))
                    break
        if sorted({i for _, i, _ in slots}) != list(range(len(self.samples))):
            raise ValueError("Each sample value must appear among the query's parameters.")
        # As ModelIterable and results_iter read the rows of this compiler.
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        compiled = _Compiled(
            sql, tuple(params), tuple(slots),
            queryset.query.select_for_update and connections[using].features.has_select_for_update,
            list(compiler.get_converters([s[0] for s in select[0 : compiler.col_count]]).items()),
            klass_info["model"], start, end, [f[0].target.attname for f in select[start:end]],
            get_related_populators(klass_info, select, using),
        )  # fmt: skip
        self._compiled[using] = compiled
        return compiled
