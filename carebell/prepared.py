"""Querysets compiled once, run again with other values: the reads of a fixed
shape that every door makes over and over (the API's token and records, a feed's
sender, patient and contacts, a FHIR reference …), with their SQL written once by
the ORM.

A small Django query spends most of its CPU in the query compiler (about 0.5 ms
here), not in the database. `Prepared` compiles the queryset once per connection
from sample values, then runs the same SQL with the real ones and builds rows,
dicts and model instances the way the ORM does (its converters, `from_db`, its
select_related populators, its annotations). What is asked, and what comes back,
is exactly the queryset's: the same tables, joins and conditions as
`build(*values)`.

On PostgreSQL the statement is also prepared on the server (parameters bound
there, `prepare=True`): PostgreSQL plans it once per connection instead of on every
call, where planning a small query costs it as much CPU as running it. Django
leaves psycopg's automatic preparing off (for connection poolers in transaction
mode, which carebell does not use); the statements run here are prepared
explicitly and nothing else is, through Django's cursor wrapper, so they are
logged, counted and their errors translated as any query's. `execute_prepared`
runs a raw statement the same way, `execute_together` several writes in one round
trip and `read_together` several reads, and `insert` writes new rows of a model
with one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

try:  # PostgreSQL's driver (a dependency; SQLite needs none of this)
    from django.db.backends.postgresql.base import (
        TIMESTAMPTZ_OID,
        Format,
        ServerBindingCursor,
        register_tzloader,
    )
except ImportError:  # pragma: no cover
    ServerBindingCursor = None


@dataclass(frozen=True, slots=True)
class _Compiled:
    connection: Any
    sql: str
    params: tuple  # the sample queryset's: constants kept, samples replaced per call
    #: (position in params, index of the value, the adapter type Django wrapped the
    #: sample in — psycopg's Int8 for a bigint column — or None).
    slots: tuple[tuple[int, int, type | None], ...]
    for_update: bool
    compiler: Any
    build_objects: Callable[[list], list] | None
    binary: bool  # results in PostgreSQL's binary format (see _BINARY_SAFE)
    #: The ORM's converters of the selected columns, (position, functions,
    #: expression) each: found once here, where `results_iter` would look them up
    #: again on every call (most of a small query's Python cost after compiling).
    converters: tuple[tuple[int, tuple, Any], ...]


class Prepared:
    """`build(*values)` → a queryset; `rows`, `dicts`, `objects` and `first` run it
    with other values.

    Each of `samples` is a value of its parameter's type that appears nowhere else
    in the query's parameters (it is found there, as it is or wrapped in an adapter
    type, and replaced by the caller's value), or None for a value this shape of the
    query does not use. `build` must give the same SQL whatever the values (no
    Python branch on them)."""

    def __init__(
        self, build: Callable[..., QuerySet], *samples: Any, using: str = DEFAULT_DB_ALIAS
    ):
        self._build, self._samples, self._using = build, samples, using
        self._compiled: dict[int, _Compiled] = {}

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

    def first(self, *values):
        """The first of `objects(*values)`, or None."""
        found = self.objects(*values)
        return found[0] if found else None

    def _run(self, values) -> tuple[_Compiled, list]:
        connection = _connected(self._using)
        compiled = self._for(connection)
        if compiled.for_update and connection.get_autocommit():  # as Django refuses it
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        for place, which, wrap in compiled.slots:
            params[place] = values[which] if wrap is None else wrap(values[which])
        with _cursor(connection, compiled.binary) as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        if not compiled.converters:
            return compiled, fetched
        return compiled, [_convert(row, compiled.converters, connection) for row in fetched]

    def _for(self, connection) -> _Compiled:
        compiled = self._compiled.get(id(connection))
        if compiled is None or compiled.connection is not connection:
            compiled = self._compiled[id(connection)] = self._compile(connection)
        return compiled

    def _compile(self, connection) -> _Compiled:
        queryset = self._build(*self._samples)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots = []
        for place, param in enumerate(params):
            for which, sample in enumerate(self._samples):
                # By type as well as value (True == 1), the sample as it is or in the
                # adapter type Django wrapped it in, which the real value gets too.
                if sample is not None and isinstance(param, type(sample)) and param == sample:
                    wrap = None if type(param) is type(sample) else type(param)
                    slots.append((place, which, wrap))
                    break
        wanted = {which for which, sample in enumerate(self._samples) if sample is not None}
        if {which for _, which, _ in slots} != wanted:
            # A value the ORM turned into something else, or one the query ignores:
            # the SQL would run with the sample, so refuse to prepare it at all.
            raise ValueError("A sample value does not reach the query's parameters.")
        build = None
        if compiler.klass_info is not None:
            build = _model_builder(compiler, connection.alias)
        binary = connection.vendor == "postgresql" and all(
            column.output_field.get_internal_type() in _BINARY_SAFE
            for column, _sql, _alias in compiler.select
        )
        for_update = bool(queryset.query.select_for_update) and (
            connection.features.has_select_for_update and connection.features.supports_transactions
        )
        return _Compiled(
            connection,
            sql,
            tuple(params),
            tuple(slots),
            for_update,
            compiler,
            build,
            binary,
            _converters(compiler),
        )


def _converters(compiler) -> tuple[tuple[int, tuple, Any], ...]:
    """What `results_iter` applies to each row, looked up once."""
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    if compiler.has_composite_fields(fields):  # pragma: no cover - none prepared
        raise ValueError("A composite primary key is not prepared.")
    found = compiler.get_converters(fields)
    return tuple((place, tuple(functions), column) for place, (functions, column) in found.items())


def _convert(row, converters, connection) -> tuple:
    """One fetched row with the ORM's converters applied, as `apply_converters`."""
    row = list(row)
    for place, functions, column in converters:
        value = row[place]
        for function in functions:
            value = function(value, column, connection)
        row[place] = value
    return tuple(row)


def execute_prepared(sql: str, params=(), *, using: str = DEFAULT_DB_ALIAS):
    """A cursor that has run raw `sql` with `params`, prepared on the server on
    PostgreSQL as `Prepared` statements are (elsewhere Django's cursor); the caller
    fetches from it and closes it (`with execute_prepared(...) as cursor:`).

    For a statement run again and again whose planning is a real part of its cost;
    its SQL must be the same text each time (psycopg keeps one prepared statement
    per text and parameter types)."""
    cursor = _cursor(_connected(using))
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise
    return cursor


def insert(
    objs: list,
    *,
    unless_taken: tuple[str, ...] = (),
    ahead: Sequence[tuple[str, Sequence]] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Write new instances of one model as `save(force_insert=True)` writes each (the
    same columns, each value prepared by its field as the ORM's insert prepares it,
    auto_now stamps, the pk set) in one prepared INSERT … RETURNING id. No signal is
    sent: for models nothing listens to (see the callers). Returns the rows written.

    With `unless_taken`, the fields of one of the model's unique constraints and one
    object, a row whose key is stored already is not written (ON CONFLICT DO
    NOTHING: a transaction writing the same key meanwhile is waited for, and no
    error aborts the caller's transaction); its object stays unsaved.

    `ahead`: data-modifying statements (SQL, parameters) that go with the rows. On
    PostgreSQL they are the INSERT's leading WITH clauses, one round trip in all;
    elsewhere they run first, one by one, in the caller's transaction. They run
    whether or not `unless_taken` leaves a row out."""
    if not objs:
        return 0
    if unless_taken and len(objs) != 1:
        raise ValueError("A key clash names one object: insert one at a time.")
    connection = connections[using]
    if not connection.features.can_return_rows_from_bulk_insert:  # pragma: no cover
        raise TypeError("This database cannot return the ids of the rows it inserts.")
    sql, params = insert_statement(objs, unless_taken=unless_taken, using=using)
    with execute_together([*ahead, (sql, params)], using=using) as cursor:
        ids = [row[0] for row in cursor.fetchall()]
    for obj, new_id in zip(objs, ids, strict=False):  # none back: the key was taken
        inserted(obj, new_id, using=using)
    return len(ids)


def inserted(obj, pk: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """`obj` as `insert` leaves it once its row is written with id `pk`: saved, as
    after `save()` (for a caller that wrote the row by a statement of its own)."""
    setattr(obj, type(obj)._meta.pk.attname, pk)
    obj._state.adding, obj._state.db = False, using


def insert_statement(
    objs: list, *, unless_taken: tuple[str, ...] = (), using: str = DEFAULT_DB_ALIAS
) -> tuple[str, list]:
    """`insert`'s statement and parameters for `objs`, not run: for a caller that
    sends it with other statements (`execute_together`, `trail.alongside`), where no
    id comes back to the objects."""
    model, connection = type(objs[0]), connections[using]
    place = (model, connection.vendor, len(objs), unless_taken)
    sql = _INSERTS.get(place) or _INSERTS.setdefault(
        place, _insert_sql(model, connection, len(objs), unless_taken)
    )
    fields = _insert_fields(model)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in fields]
    return sql, params


def execute_together(statements: Sequence[tuple[str, Sequence]], *, using=DEFAULT_DB_ALIAS):
    """Run data-modifying statements (SQL, parameters) in one round trip on
    PostgreSQL: all but the last as its leading WITH clauses (each runs once, whether
    or not the last reads it). Elsewhere one by one, in order. Returns the last one's
    cursor, as `execute_prepared` does."""
    *ahead, (sql, params) = statements
    if ahead and connections[using].vendor == "postgresql":
        clauses = ", ".join(f"w{n} AS ({statement})" for n, (statement, _) in enumerate(ahead))
        sql, params = f"WITH {clauses} {sql}", [p for _, ps in ahead for p in ps] + list(params)
        ahead = []
    for statement, values in ahead:
        with execute_prepared(statement, values, using=using):
            pass
    return execute_prepared(sql, params, using=using)


def read_together(statements: Sequence[tuple[str, Sequence]], *, using=DEFAULT_DB_ALIAS):
    """The rows of reads (SQL, parameters) that do not depend on each other, each
    prepared as `execute_prepared` prepares it, in one round trip on PostgreSQL
    (psycopg's pipeline mode: every statement sent, then one sync); elsewhere one
    after another. A list of row lists, in the statements' order."""
    connection = connections[using]
    if connection.vendor != "postgresql" or ServerBindingCursor is None or len(statements) < 2:
        found = []
        for sql, params in statements:
            with execute_prepared(sql, params, using=using) as cursor:
                found.append(cursor.fetchall())
        return found
    _connected(using)
    cursors = [_cursor(connection) for _ in statements]
    try:
        with connection.wrap_database_errors, connection.connection.pipeline():
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


#: The INSERT of each (model, vendor, row count, conflict key).
_INSERTS: dict[tuple, str] = {}


def _insert_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _insert_sql(model, connection, count: int, unless_taken: tuple[str, ...]) -> str:
    quote, meta = connection.ops.quote_name, model._meta
    fields = _insert_fields(model)
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([row] * count)}"
    )
    if unless_taken:
        key = [quote(meta.get_field(name).column) for name in unless_taken]
        sql += f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
    return sql + f" RETURNING {quote(meta.pk.column)}"


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


def _connected(using: str):
    """The connection, checked and opened as Django's own cursor() does first."""
    connection = connections[using]
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    return connection


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
