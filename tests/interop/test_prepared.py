"""Querysets compiled once (carebell.interop.prepared) answer what the queryset
itself answers: the same rows, values converted as Django converts them, related
rows of select_related, row locks only inside a transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.db.transaction import TransactionManagementError

from carebell.interop.hl7.models import Hl7Message, Hl7Sender
from carebell.interop.prepared import Prepared
from carebell.people.models import Patient
from tests import factories

pytestmark = pytest.mark.django_db


def _senders(app, facility):
    return Hl7Sender.objects.select_related("site__delivery").filter(
        Q(sending_application__in=(app, "")) & Q(sending_facility__in=(facility, "")),
        enabled=True,
    )


SENDERS = Prepared(_senders, "\x00app", "\x00facility")


def test_same_rows_and_related_rows_as_the_queryset(site, org):
    other = factories.make_site(org, name="Other clinic")
    Hl7Sender.objects.create(site=site, mapping={"time_zone": "Europe/London"})
    Hl7Sender.objects.create(sending_application="PMS", sending_facility="EAST", site=other)
    Hl7Sender.objects.create(sending_application="PMS", sending_facility="WEST", site=other,
                             enabled=False)  # fmt: skip
    for app, facility in [("PMS", "EAST"), ("PMS", "WEST"), ("LAB", ""), ("", "")]:
        prepared = sorted(SENDERS.rows(app, facility), key=lambda r: r.pk)
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


def test_binary_field_comes_back_as_bytes(site):
    Hl7Message.objects.create(received_at=site.created_at, via="file", sender="A/B",
                              control_id="1", digest="d", raw=b"MSH|x", outcome="applied",
                              ack=b"ACK")  # fmt: skip
    one = Prepared(lambda control_id: Hl7Message.objects.filter(control_id=control_id), "\x00c")
    row = one.first("1")
    assert bytes(row.raw) == b"MSH|x" and bytes(row.ack) == b"ACK"


@pytest.mark.django_db(transaction=True)
def test_a_row_lock_needs_a_transaction(site):
    locked = Prepared(lambda pk: Patient.objects.select_for_update().filter(pk=pk), -1)
    patient = factories.make_patient(site)
    if connection.features.has_select_for_update:  # elsewhere Django ignores the lock too
        with pytest.raises(TransactionManagementError):
            locked.rows(patient.pk)
    with transaction.atomic():
        assert locked.rows(patient.pk) == [patient]


def test_a_sample_missing_from_the_query_is_refused(site):
    with pytest.raises(ValueError):
        Prepared(lambda pk: Patient.objects.filter(pk=1), -1).rows(5)
