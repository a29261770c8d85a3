"""Reads of a fixed shape that the API makes on every request (its token, the
token user's permissions), with their SQL written once by the ORM.

A small Django query spends most of its CPU in the query compiler (about 0.5 ms
here), not in the database; on the door's path that is a quarter of a request.
`Prepared` compiles the queryset once per connection with a stand-in value, then
runs the same SQL with the real one and builds rows and model instances the way
the ORM does (its converters, its select_related populators). The query is still
the ORM's: the same tables, joins and conditions as `build(value)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


@dataclass(slots=True)
class _Compiled:
    connection: Any
    sql: str
    params: list
    holes: list[tuple[int, int]]  # (place in `params`, which value goes there)
    compiler: Any
    build_objects: Callable[[list], list] | None


class Prepared:
    """`build(*values)` → a queryset; `rows(*values)` / `objects(*values)` run it.

    Each of `stand_ins` is a value of its parameter's type that appears nowhere
    else in the query's parameters; `build` must give the same SQL whatever the
    values (no Python branch on them)."""

    def __init__(self, build: Callable[..., QuerySet], *stand_ins: Any, using: str = "default"):
        self._build, self._stand_ins, self._using = build, stand_ins, using
        self._compiled: dict[int, _Compiled] = {}

    def _for(self, connection) -> _Compiled:
        compiled = self._compiled.get(id(connection))
        if compiled is None or compiled.connection is not connection:
            compiled = self._compiled[id(connection)] = self._compile(connection)
        return compiled

    def _compile(self, connection) -> _Compiled:
        queryset = self._build(*self._stand_ins)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        holes = [
            (i, self._stand_ins.index(p)) for i, p in enumerate(params) if p in self._stand_ins
        ]
        if not holes:
            raise ValueError("No stand-in value reaches the query's parameters.")
        build = None
        if compiler.klass_info is not None:
            build = _model_builder(compiler, connection.alias)
        return _Compiled(connection, sql, list(params), holes, compiler, build)

    def _run(self, values) -> tuple[_Compiled, list]:
        connection = connections[self._using]
        connection.ensure_connection()
        compiled = self._for(connection)
        params = list(compiled.params)
        for place, which in compiled.holes:
            params[place] = values[which]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        return compiled, list(compiled.compiler.results_iter([fetched], tuple_expected=True))

    def rows(self, *values) -> list[tuple]:
        """The query's rows, converted as the ORM converts them (values_list shape)."""
        return self._run(values)[1]

    def objects(self, *values) -> list:
        """The query's model instances, related objects of select_related included."""
        compiled, rows = self._run(values)
        if compiled.build_objects is None:
            raise TypeError("This query selects values, not model instances.")
        return compiled.build_objects(rows)


def _model_builder(compiler, alias: str) -> Callable[[list], list]:
    """What ModelIterable does with a compiler's rows, for one compiled query."""
    select, klass_info = compiler.select, compiler.klass_info
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    names = [column[0].target.attname for column in select[start:end]]

    def build(rows: list) -> list:
        populators = get_related_populators(klass_info, select, alias)
        found = []
        for row in rows:
            obj = model.from_db(alias, names, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            found.append(obj)
        return found

    return build
