"""Querysets compiled once (carebell.prepared) answer what the queryset itself
answers: the same rows, values and types (PostgreSQL reads some of them in binary),
the same instances and related rows of select_related, the caller's values (also
where Django wraps them in an adapter type), row locks only inside a transaction;
and on PostgreSQL the statements are prepared on the server."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from carebell.api.resources import _lister, _reader
from carebell.api.routes.appointments import APPOINTMENTS
from carebell.api.routes.people import PATIENTS
from carebell.appointments.models import Appointment
from carebell.interop.hl7.models import Hl7Message, Hl7Sender
from carebell.people.models import Patient
from carebell.prepared import Prepared, execute_prepared
from carebell.sites.roles import FRONT_DESK
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(site):
    return factories.make_staff(site, FRONT_DESK)


def _server_prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


# --- rows, dicts, objects, first ------------------------------------------------------


def test_a_page_is_the_orms_page(site, other_org_site, staff):
    for _ in range(4):
        factories.make_patient(site)
    factories.make_patient(other_org_site)
    fields = list(PATIENTS.out.model_fields)
    page = _lister(PATIENTS, False, ("site_id",), 3).dicts(0, staff.pk, site.pk)
    mine = Patient.objects.filter(site=site).order_by("pk").values(*fields)
    assert page == list(mine[:4])
    for name, value in page[0].items():
        assert type(value) is type(mine[0][name]), name
    assert page[0]["created_at"].tzinfo == mine[0]["created_at"].tzinfo
    after = _lister(PATIENTS, False, ("site_id",), 3).dicts(page[1]["id"], staff.pk, site.pk)
    assert [p["id"] for p in after] == [p["id"] for p in mine[2:]]


def test_a_page_of_a_superuser_sees_every_site(site, other_org_site):
    root = User.objects.create_superuser("root", password="a-long-test-password")
    ids = [factories.make_patient(s).pk for s in (site, other_org_site)]
    assert [p["id"] for p in _lister(PATIENTS, True, (), 10).dicts(0, root.pk)] == ids


def test_rows_are_the_orms_values_list(site):
    patients = [factories.make_patient(site) for _ in range(2)]
    query = Prepared(
        lambda site_id: (
            Patient.objects.filter(site_id=site_id)
            .order_by("pk")
            .values_list("pk", "first_name", "created_at")
        ),
        -1,
    )
    orm = list(
        Patient.objects.filter(site=site)
        .order_by("pk")
        .values_list("pk", "first_name", "created_at")
    )
    assert query.rows(site.pk) == orm
    assert [row[0] for row in orm] == [p.pk for p in patients]
    assert [type(v) for v in query.rows(site.pk)[0]] == [type(v) for v in orm[0]]


def test_one_record_is_the_orms_instance(site, other_org_site, staff):
    appointment = factories.make_appointment(factories.make_patient(site))
    (found,) = _reader(APPOINTMENTS, False).objects(appointment.pk, staff.pk)
    stored = Appointment.objects.get(pk=appointment.pk)
    for field in Appointment._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(stored, field.attname), field.name
    outsider = factories.make_staff(other_org_site, FRONT_DESK)
    assert _reader(APPOINTMENTS, False).objects(appointment.pk, outsider.pk) == []


def _senders(app, facility):
    return Hl7Sender.objects.select_related("site__delivery").filter(
        Q(sending_application__in=(app, "")) & Q(sending_facility__in=(facility, "")),
        enabled=True,
    )


SENDERS = Prepared(_senders, "\x00app", "\x00facility")


def test_same_instances_and_related_rows_as_the_queryset(site, org):
    other = factories.make_site(org, name="Other clinic")
    Hl7Sender.objects.create(site=site, mapping={"time_zone": "Europe/London"})
    Hl7Sender.objects.create(sending_application="PMS", sending_facility="EAST", site=other)
    Hl7Sender.objects.create(sending_application="PMS", sending_facility="WEST", site=other,
                             enabled=False)  # fmt: skip
    for app, facility in [("PMS", "EAST"), ("PMS", "WEST"), ("LAB", ""), ("", "")]:
        prepared = sorted(SENDERS.objects(app, facility), key=lambda r: r.pk)
        orm = sorted(_senders(app, facility), key=lambda r: r.pk)
        assert [r.pk for r in prepared] == [r.pk for r in orm]
        for mine, theirs in zip(prepared, orm, strict=True):
            assert mine.mapping == theirs.mapping  # a JSONField, converted
            assert mine.site.name == theirs.site.name  # select_related, no query
            assert mine.site.delivery.pk == theirs.site.delivery.pk
            assert not mine._state.adding and mine._state.db == "default"


def test_values_are_the_callers_not_the_samples(site):
    patient = factories.make_patient(site, source="hl7:X", external_id="P1")
    by_key = Prepared(
        lambda site_id, source, external_id: Patient.objects.filter(
            site_id=site_id, source=source, external_id=external_id
        ),
        -1, "\x00s", "\x00e",
    )  # fmt: skip
    assert by_key.first(site.pk, "hl7:X", "P1") == patient
    assert by_key.first(site.pk, "hl7:X", "P2") is None
    assert by_key.first(site.pk + 1, "hl7:X", "P1") is None


def test_a_value_django_wraps_in_an_adapter_type_is_wrapped_too(site):
    # On PostgreSQL Django binds an integer column's value in psycopg's Int2/4/8;
    # the caller's value goes in the same type (the sample is found inside it).
    appointment = factories.make_appointment(factories.make_patient(site))
    by_pk = Prepared(lambda pk: Appointment.objects.filter(pk=pk), -1)
    _sql, params = Appointment.objects.filter(pk=-1).query.sql_with_params()
    (slot,) = by_pk._for(connection).slots
    assert slot[2] is (None if type(params[0]) is int else type(params[0]))
    assert by_pk.first(appointment.pk) == appointment
    assert by_pk.first(appointment.pk + 1) is None


def test_binary_field_comes_back_as_bytes(site):
    Hl7Message.objects.create(received_at=site.created_at, via="file", sender="A/B",
                              control_id="1", digest="d", raw=b"MSH|x", outcome="applied",
                              ack=b"ACK")  # fmt: skip
    one = Prepared(lambda control_id: Hl7Message.objects.filter(control_id=control_id), "\x00c")
    row = one.first("1")
    assert bytes(row.raw) == b"MSH|x" and bytes(row.ack) == b"ACK"


# --- refusals -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_row_lock_needs_a_transaction(site):
    locked = Prepared(lambda pk: Patient.objects.select_for_update().filter(pk=pk), -1)
    patient = factories.make_patient(site)
    with transaction.atomic():
        assert locked.objects(patient.pk) == [patient]
    if connection.features.has_select_for_update:  # elsewhere Django ignores the lock too
        with pytest.raises(TransactionManagementError):
            locked.objects(patient.pk)  # compiled already: refused all the same
        with pytest.raises(TransactionManagementError):
            Prepared(lambda pk: Patient.objects.select_for_update().filter(pk=pk), -1).first(1)
    else:
        assert locked.objects(patient.pk) == [patient]


def test_a_sample_missing_from_the_query_is_refused(site):
    with pytest.raises(ValueError, match="sample"):
        Prepared(lambda pk: Patient.objects.filter(pk=1), -1).objects(5)
    unused = Prepared(lambda pk, other: Patient.objects.filter(pk=pk), -1, -2)
    with pytest.raises(ValueError, match="sample"):
        unused.rows(1, 2)


def test_a_sample_of_another_type_is_not_taken_for_it(site):
    # True == 1, but a key's 1 is not a flag's True: the sample is not found there.
    with pytest.raises(ValueError, match="sample"):
        Prepared(lambda flag: Patient.objects.filter(pk=1), True).objects(False)


def test_a_none_sample_is_a_value_the_shape_does_not_use(site):
    patient = factories.make_patient(site)
    query = Prepared(lambda pk, unused=None: Patient.objects.filter(pk=pk), -1, None)
    assert query.first(patient.pk, None) == patient


# --- on the server --------------------------------------------------------------------


@pytest.mark.postgres_only
def test_statements_are_prepared_on_the_server_and_nothing_else_is(site):
    patient = factories.make_patient(site, source="hl7:Y", external_id="PREP-1")
    query = Prepared(lambda external_id: Patient.objects.filter(external_id=external_id), "\x00e")
    for _ in range(3):
        assert query.first("PREP-1") == patient
    for _ in range(10):
        list(Patient.objects.filter(external_id="PREP-1"))  # the ORM's: not prepared
    prepared = _server_prepared()
    mine = [s for s in prepared if '"people_patient"' in s and '"external_id" = $1' in s]
    assert len(mine) == 1, prepared
    assert all("$1" in s or "$" not in s for s in prepared)
    assert connection.connection.prepare_threshold > 10**9


@pytest.mark.postgres_only
def test_a_row_of_safe_columns_comes_back_in_binary_as_the_orm_reads_it(site):
    patient = factories.make_patient(site)
    fields = ("pk", "first_name", "birth_date", "created_at", "site_id")
    query = Prepared(lambda pk: Patient.objects.filter(pk=pk).values_list(*fields), -1)
    assert query._for(connection).binary
    (row,) = query.rows(patient.pk)
    (orm,) = Patient.objects.filter(pk=patient.pk).values_list(*fields)
    assert row == orm and [type(v) for v in row] == [type(v) for v in orm]
    assert row[3].tzinfo == orm[3].tzinfo


def test_a_prepared_read_is_logged_and_counted(site, django_assert_num_queries):
    patient = factories.make_patient(site)
    query = Prepared(lambda pk: Patient.objects.filter(pk=pk), -1)
    with django_assert_num_queries(1) as captured:
        assert query.first(patient.pk) == patient
    assert '"people_patient"' in captured.captured_queries[0]["sql"]


# --- raw SQL --------------------------------------------------------------------------


def test_raw_sql_runs_with_its_parameters(site, django_assert_num_queries):
    patient = factories.make_patient(site)
    sql = f"SELECT first_name FROM {Patient._meta.db_table} WHERE id = %s"
    with django_assert_num_queries(2):
        for _ in range(2):
            with execute_prepared(sql, [patient.pk]) as cursor:
                assert cursor.fetchall() == [(patient.first_name,)]
    if connection.vendor == "postgresql":
        assert sum("WHERE id = $1" in s for s in _server_prepared()) == 1


def test_raw_sql_that_fails_raises_djangos_error(site):
    with pytest.raises(DatabaseError), transaction.atomic():
        execute_prepared(f"SELECT no_such_column FROM {Hl7Sender._meta.db_table}")


@pytest.mark.postgres_only
def test_the_delivery_report_is_prepared_on_the_server(site):
    from carebell import outbox
    from carebell.messaging.models import OutboxMessage
    from tests.dispatch.test_dispatcher import planned_reminder, send_due

    message = send_due(planned_reminder(site))
    for _ in range(3):  # a report and its replays: one text, one prepared statement
        outbox.record_status(
            "console", message.provider_message_id, "delivered", now=message.due_at
        )
    assert OutboxMessage.objects.get(id=message.id).status == "delivered"
    reports = [s for s in _server_prepared() if s.startswith("WITH found AS")]
    assert len(reports) == 1, reports


# --- the audit entry's INSERT (carebell.audit.trail) -----------------------------------


def test_an_audit_entry_is_written_as_model_save_writes_it(site, staff, django_assert_num_queries):
    from carebell.audit import trail
    from carebell.audit.models import AuditEvent

    patient = factories.make_patient(site)
    with django_assert_num_queries(1):
        event = trail.record(staff, "view", patient, detail={"api": "GET"})
    assert event.pk is not None and not event._state.adding and event._state.db == "default"
    saved = AuditEvent(**{f.attname: getattr(event, f.attname) for f in AuditEvent._meta.fields})
    saved.pk = None
    saved.save(force_insert=True)
    mine, theirs = AuditEvent.objects.filter(pk__in=[event.pk, saved.pk]).order_by("pk").values()
    assert {**mine, "id": None} == {**theirs, "id": None}
    assert mine == {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.fields}
    assert mine["actor_id"] == staff.pk and mine["site_id"] == site.pk
    assert mine["object_id"] == str(patient.pk) and mine["detail"] == {"api": "GET"}
    system = trail.record(None, "export", object_type="people.patient", detail={"system": "csv"})
    assert system.pk > event.pk and AuditEvent.objects.get(pk=system.pk).actor_label == "csv"
    with pytest.raises(PermissionError):
        trail._insert(event)  # append-only: an entry with an id is not written again
    if connection.vendor == "postgresql":
        assert any(s.startswith('INSERT INTO "audit_auditevent"') for s in _server_prepared())


def test_a_batched_audit_entry_still_waits_for_its_block(site, staff):
    from carebell.audit import trail
    from carebell.audit.models import AuditEvent

    with transaction.atomic(), trail.batched():
        event = trail.record(staff, "view", site)
        assert event.pk is None and not AuditEvent.objects.exists()
    assert AuditEvent.objects.get().action == "view"


# --- insert ----------------------------------------------------------------------------


def test_insert_writes_the_rows_save_would_and_sets_their_ids(site):
    from carebell.prepared import insert

    patient = factories.make_patient(site)
    made = [Patient(site=site, external_id=f"I-{n}", first_name="Ada", last_name="B")
            for n in range(3)]  # fmt: skip
    assert insert(made) == 3
    stored = {p.pk: p for p in Patient.objects.filter(external_id__startswith="I-")}
    assert sorted(stored) == sorted(p.pk for p in made) and patient.pk not in stored
    for p in made:
        assert not p._state.adding and stored[p.pk].external_id == p.external_id
        assert stored[p.pk].created_at == p.created_at is not None


def test_insert_unless_taken_skips_a_taken_key_and_leaves_the_transaction_usable(site):
    from carebell.prepared import insert

    patient = factories.make_patient(site)
    first = Appointment(site=site, patient=patient, source="t", external_id="U-1",
                        starts_at=timezone.now())  # fmt: skip
    key = ("site", "source", "external_id")
    with transaction.atomic():
        assert insert([first], unless_taken=key) == 1
        again = Appointment(site=site, patient=patient, source="t", external_id="U-1",
                            starts_at=first.starts_at)  # fmt: skip
        assert insert([again], unless_taken=key) == 0
        assert again.pk is None and again._state.adding
        assert Appointment.objects.filter(external_id="U-1").count() == 1
    with pytest.raises(ValueError):
        insert([again, again], unless_taken=key)


def test_insert_runs_the_statements_ahead_with_its_rows_in_one_round_trip_on_postgresql(site):
    from django.test.utils import CaptureQueriesContext

    from carebell.prepared import insert

    patient = factories.make_patient(site)
    rename = ("UPDATE people_patient SET first_name = %s WHERE id = %s", ["Ahead", patient.pk])
    made = Patient(site=site, external_id="W-1", first_name="Ada", last_name="B")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert insert([made], ahead=[rename]) == 1
    assert Patient.objects.get(pk=patient.pk).first_name == "Ahead"
    assert Patient.objects.get(pk=made.pk).external_id == "W-1"
    statements = [q["sql"] for q in queries if "people_patient" in q["sql"]]
    assert len(statements) == (1 if connection.vendor == "postgresql" else 2), statements


def test_reads_together_answer_as_each_alone_in_one_sync_on_postgresql(site, monkeypatch):
    from carebell.prepared import read_together

    first, second = factories.make_patient(site), factories.make_patient(site)
    names = f"SELECT first_name FROM {Patient._meta.db_table} WHERE id = %s"
    count = f"SELECT count(*) FROM {Patient._meta.db_table} WHERE site_id = %s"
    reads = [(names, [first.pk]), (count, [site.pk]), (names, [second.pk])]
    alone = []
    for sql, params in reads:
        with execute_prepared(sql, params) as cursor:
            alone.append(cursor.fetchall())
    pipelines = []
    if connection.vendor == "postgresql":
        raw = connection.connection
        opened = type(raw).pipeline
        monkeypatch.setattr(type(raw), "pipeline", lambda self: pipelines.append(1) or opened(self))
    with transaction.atomic():
        together = read_together(reads)
    assert together == alone == [[(first.first_name,)], [(2,)], [(second.first_name,)]]
    assert len(pipelines) == (1 if connection.vendor == "postgresql" else 0)


def test_reads_together_that_fail_raise_djangos_error_and_leave_no_pipeline_open(site):
    from carebell.prepared import read_together

    bad = f"SELECT no_such_column FROM {Hl7Sender._meta.db_table}"
    with pytest.raises(DatabaseError), transaction.atomic():
        read_together([("SELECT 1", []), (bad, [])])
    with execute_prepared("SELECT 2") as cursor:  # the connection goes on as before
        assert cursor.fetchall() == [(2,)]
    if connection.vendor == "postgresql":
        assert connection.connection._pipeline is None
