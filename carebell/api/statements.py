"""Reads of a fixed shape that the API makes on every request (its token, the
token user's permissions), with their SQL written once by the ORM.

A small Django query spends most of its CPU in the query compiler (about 0.5 ms
here), not in the database; on the door's path that is a quarter of a request.
`Prepared` compiles the queryset once per connection with a stand-in value, then
runs the same SQL with the real one and builds rows and model instances the way
the ORM does (its converters, its select_related populators, its annotations).
The query is still the ORM's: the same tables, joins and conditions as
`build(value)`.

On PostgreSQL the statement is also prepared on the server (parameters bound
there, `prepare=True`): PostgreSQL plans it once per connection instead of on every
request, where planning a small query costs it as much CPU as running it. Django
leaves psycopg's automatic preparing off (for connection poolers in transaction
mode, which carebell does not use); these few statements are prepared explicitly
and nothing else is, through Django's cursor wrapper, so they are logged, counted
and their errors translated as any query's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

try:  # PostgreSQL's driver (a dependency; SQLite needs none of this)
    from django.db.backends.postgresql.base import (
        TIMESTAMPTZ_OID,
        Format,
        ServerBindingCursor,
        register_tzloader,
    )
except ImportError:  # pragma: no cover
    ServerBindingCursor = None


@dataclass(slots=True)
class _Compiled:
    connection: Any
    sql: str
    params: list
    holes: list[tuple[int, int]]  # (place in `params`, which value goes there)
    compiler: Any
    build_objects: Callable[[list], list] | None
    binary: bool  # results in PostgreSQL's binary format (see _BINARY_SAFE)


class Prepared:
    """`build(*values)` → a queryset; `rows(*values)` / `objects(*values)` run it.

    Each of `stand_ins` is a value of its parameter's type that appears nowhere
    else in the query's parameters, and each must reach them as it is (None: a
    value this shape of the query does not use); `build` must give the same SQL
    whatever the values (no Python branch on them)."""

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
        wanted = [v for v in self._stand_ins if v is not None]
        holes = [(i, self._stand_ins.index(p)) for i, p in enumerate(params) if p in wanted]
        if {self._stand_ins[which] for _, which in holes} != set(wanted):
            # A value the ORM turned into something else, or one the query ignores:
            # the SQL would run with the stand-in, so refuse to prepare it at all.
            raise ValueError("A stand-in value does not reach the query's parameters.")
        build = None
        if compiler.klass_info is not None:
            build = _model_builder(compiler, connection.alias)
        binary = connection.vendor == "postgresql" and all(
            column.output_field.get_internal_type() in _BINARY_SAFE
            for column, _sql, _alias in compiler.select
        )
        return _Compiled(connection, sql, list(params), holes, compiler, build, binary)

    def _run(self, values) -> tuple[_Compiled, list]:
        connection = connections[self._using]
        connection.close_if_health_check_failed()  # as Django's own cursor() does
        connection.ensure_connection()
        compiled = self._for(connection)
        params = list(compiled.params)
        for place, which in compiled.holes:
            params[place] = values[which]
        with _cursor(connection, compiled.binary) as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        return compiled, list(compiled.compiler.results_iter([fetched], tuple_expected=True))

    def rows(self, *values) -> list[tuple]:
        """The query's rows, converted as the ORM converts them (values_list shape)."""
        return self._run(values)[1]

    def dicts(self, *values) -> list[dict]:
        """The query's rows as dicts (values() shape), as ValuesIterable builds them."""
        compiled, rows = self._run(values)
        query = compiled.compiler.query
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def objects(self, *values) -> list:
        """The query's model instances, related objects of select_related included."""
        compiled, rows = self._run(values)
        if compiled.build_objects is None:
            raise TypeError("This query selects values, not model instances.")
        return compiled.build_objects(rows)


#: The connection's automatic-preparing threshold (Django's None turns preparing
#: off altogether): out of reach, so nothing else is prepared behind its back.
ONLY_WHEN_ASKED = 2**62

if ServerBindingCursor is not None:

    class _Preparing(ServerBindingCursor):
        """psycopg's cursor with parameters bound by the server and every statement
        prepared (psycopg names them and keeps them per connection)."""

        binary_results = False

        def execute(self, query, params=None, *, prepare=True, binary=None):
            binary = self.binary_results if binary is None else binary
            return super().execute(query, params, prepare=prepare, binary=binary)

        def _send_query_prepared(self, name, pgq, *, binary=None):
            # What Django's query log reads (psycopg keeps it only for statements
            # it does not prepare): the SQL, its parameters as $1, $2 ….
            self._query = pgq
            return super()._send_query_prepared(name, pgq, binary=binary)


#: Columns whose values psycopg loads from PostgreSQL's binary format as Django
#: loads them from text (in C, where Django's loader of timestamps is Python, most
#: of a page's fetching): numbers, text, truth, dates, and timestamps while the
#: session's zone is UTC (then both give datetimes in datetime.timezone.utc).
#: Not JSON (Django parses it itself) nor anything else.
_BINARY_SAFE = frozenset({
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField", "ForeignKey", "OneToOneField", "CharField", "TextField",
    "SlugField", "BooleanField", "DateField", "DateTimeField",
})  # fmt: skip


def _cursor(connection, binary: bool = False):
    """Django's cursor; on PostgreSQL one that prepares its statements, set up as
    Django sets up its own (the time zone of timestamps, the wrapper that logs
    queries and translates errors), with `binary` results while the session's
    zone is UTC."""
    if connection.vendor != "postgresql" or ServerBindingCursor is None:
        return connection.cursor()
    connection.validate_thread_sharing()
    if connection.connection.prepare_threshold is None:
        # psycopg prepares nothing, even when asked, without a threshold; this one
        # is never reached by a statement run any number of times, so only those
        # asked for (these) are prepared.
        connection.connection.prepare_threshold = ONLY_WHEN_ASKED
    raw = _Preparing(connection.connection)
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if connection.timezone != loader.timezone:
        register_tzloader(connection.timezone, raw)
    raw.binary_results = binary and connection.timezone == dt.UTC == _session_zone(raw)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def _session_zone(raw):
    zone = raw.connection.info.parameter_status("TimeZone")
    return dt.UTC if zone == "UTC" else zone


def _model_builder(compiler, alias: str) -> Callable[[list], list]:
    """What ModelIterable does with a compiler's rows, for one compiled query."""
    select, klass_info = compiler.select, compiler.klass_info
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    names = [column[0].target.attname for column in select[start:end]]
    annotations = list(compiler.annotation_col_map.items())

    def build(rows: list) -> list:
        populators = get_related_populators(klass_info, select, alias)
        found = []
        for row in rows:
            obj = model.from_db(alias, names, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, place in annotations:
                setattr(obj, name, row[place])
            found.append(obj)
        return found

    return build
