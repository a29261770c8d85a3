from datetime import UTC, date, datetime

from carebell.core.grouping import AppointmentItem, PatientItem, group_same_day, group_siblings
from carebell.core.reasons import Code
from carebell.core.vocab import Channel, Kind

DAY = date(2024, 6, 10)
PHONE = "+12025550100"


def item(patient, hour, day=DAY, site=1, address=PHONE, kind=Kind.APPT_REMINDER):
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return AppointmentItem(Channel.SMS, address, kind, site, day, patient, f"a{patient}", start)


def test_same_day_siblings_become_one_message_per_contact():
    groups = group_siblings([item("ben", 15), item("amy", 14)])
    assert len(groups) == 1
    assert [i.patient_id for i in groups[0].items] == ["amy", "ben"]
    assert groups[0].reasons[0].code is Code.COMBINED_SIBLINGS


def test_siblings_on_different_days_or_sites_stay_apart():
    items = [item("amy", 14), item("ben", 14, day=date(2024, 6, 11)), item("cat", 14, site=2)]
    assert len(group_siblings(items)) == 3


def test_siblings_stay_apart_when_the_site_does_not_combine():
    assert len(group_siblings([item("amy", 14), item("ben", 15)], combine=False)) == 2


def test_each_parent_gets_their_own_combined_message():
    items = [item("amy", 14), item("ben", 15), item("amy", 14, address="+12025550199")]
    assert [len(g.items) for g in group_siblings(items)] == [2, 1]


def test_one_patients_same_day_ready_fills_share_one_message():
    items = [PatientItem("p", Kind.RX_READY, 1, DAY, f"fill{n}") for n in range(3)]
    items.append(PatientItem("p", Kind.RX_READY, 1, date(2024, 6, 11), "fill9"))
    groups = group_same_day(items)
    assert [len(g.items) for g in groups] == [3, 1]
    assert groups[0].reasons[0].param("count") == "3"


def test_due_and_past_due_prescriptions_are_separate_messages():
    items = [
        PatientItem("p", Kind.REFILL_DUE, 1, DAY, "rx1"),
        PatientItem("p", Kind.REFILL_DUE, 1, DAY, "rx2"),
        PatientItem("p", Kind.REFILL_PAST_DUE, 1, DAY, "rx3"),
    ]
    assert [len(g.items) for g in group_same_day(items)] == [2, 1]
