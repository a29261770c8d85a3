"""Consent in the staff app: recorded from the panel with the site's wording, the
ledger per site and period, its CSV export, a new wording version — each route
checked per role and against another site and organization."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from django.urls import reverse

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind
from carebell.people import consent
from carebell.people.models import ConsentRecord, ConsentWording, ContactPoint
from carebell.sites.roles import FRONT_DESK, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests import factories

pytestmark = pytest.mark.django_db

NUMBER = "+12025550123"


@pytest.fixture
def point(site):
    patient = factories.make_patient(site, first_name="Ana", last_name="Lopez")
    contact = factories.make_contact(patient, first_name="Rosa")
    return factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)


def form_url(point) -> str:
    return reverse("staff:record-consent", args=[point.contact.patient_id])


def posted(chosen, /, **changes) -> dict:
    data = {"point": chosen.pk, "channel": "sms", "action": "grant", "source": "paper",
            "evidence": "Form 12", "wording_version": consent.DEFAULT_VERSION,
            "shown": "on"}  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_form_shows_the_sites_current_wording(staff_of, point, site):
    response = staff_of(FRONT_DESK).get(form_url(point))
    assert response.status_code == 200
    text = response.content.decode()
    assert consent.current_wording(site)[1] in text and consent.DEFAULT_VERSION in text


def test_front_desk_records_a_paper_consent(staff_of, point, site):
    client = staff_of(FRONT_DESK)
    response = client.post(form_url(point), posted(point))
    assert response.status_code == 302 and response["Location"].endswith("#consent")
    record = ConsentRecord.objects.get()
    assert (record.action, record.source, record.channel, record.address) == (
        "grant", "paper", "sms", NUMBER,
    )  # fmt: skip
    assert record.captured_by == client.user and record.evidence == "Form 12"
    assert (record.wording_version, record.wording) == consent.current_wording(site)
    assert ContactPoint.objects.get().consent_sms is True


def test_the_panel_lists_every_record_newest_first(staff_of, point):
    client = staff_of(FRONT_DESK)
    client.post(form_url(point), posted(point))
    client.post(form_url(point), posted(point, action="revoke", source="verbal", shown=None))
    page = client.get(reverse("staff:patient", args=[point.contact.patient_id])).content.decode()
    history = page[page.index('id="consent"') :]
    assert history.index("Revoked") < history.index("Granted")
    assert "Record consent or withdrawal" in page


@pytest.mark.parametrize(
    "changes",
    [
        {"channel": "fax"},
        {"source": "signature_pad"},  # the pad comes through the API, not this form
        {"action": None},
        {"point": "999999"},
        {"shown": None},  # a grant needs the words shown
        {"wording_version": "old-version"},
        {"evidence": "x" * 301},
        {"channel": "email"},  # a mobile cannot consent to email
    ],
)
def test_a_malformed_form_is_refused_with_nothing_written(staff_of, point, changes):
    response = staff_of(FRONT_DESK).post(form_url(point), posted(point, **changes))
    assert response.status_code == 400
    assert b'class="errors"' in response.content or b'class="error"' in response.content
    assert ConsentRecord.objects.count() == 0


def test_read_only_staff_may_not_record_consent(staff_of, point):
    response = staff_of(READ_ONLY).post(form_url(point), posted(point))
    assert response.status_code == 403 and ConsentRecord.objects.count() == 0


def test_another_organizations_patient_is_not_found(outsider, point):
    assert outsider.get(form_url(point)).status_code == 404
    assert outsider.post(form_url(point), posted(point)).status_code == 404
    assert ConsentRecord.objects.count() == 0


def test_another_site_of_the_organization_is_not_found(staff_of, org, point):
    other = factories.make_site(org, name="Uptown")
    client = staff_of(FRONT_DESK, at=other)
    assert client.post(form_url(point), posted(point)).status_code == 404


def test_a_point_of_another_patient_is_refused(staff_of, site, point):
    other = factories.make_contact(factories.make_patient(site))
    theirs = factories.add_point(other, ContactPointKind.MOBILE, "+12025550177")
    response = staff_of(FRONT_DESK).post(form_url(point), posted(point, point=theirs.pk))
    assert response.status_code == 400 and ConsentRecord.objects.count() == 0


# The ledger ----------------------------------------------------------------------------------


def signed(point, **extra):
    png = b"\x89PNG fake signature"
    return consent.record_consent(point, "sms", "grant", source="signature_pad",
                                  wording="I agree =1+1", wording_version="pos-3",
                                  system="pos", signature=png, **extra), png  # fmt: skip


def test_the_ledger_shows_the_sites_records(staff_of, point):
    signed(point)
    response = staff_of(READ_ONLY).get(reverse("staff:consent-ledger"))
    assert response.status_code == 200
    text = response.content.decode()
    assert NUMBER in text and "pos-3" in text and "Signature pad" in text
    assert AuditEvent.objects.filter(action="list", object_type="people.consentrecord").exists()


def test_the_ledger_filters_by_period(staff_of, point):
    signed(point)
    client = staff_of(READ_ONLY)
    empty = client.get(reverse("staff:consent-ledger"), {"start": "2026-01-01",
                                                           "end": "2026-01-31"})  # fmt: skip
    assert NUMBER not in empty.content.decode()
    found = client.get(reverse("staff:consent-ledger"), {"start": "2026-11-25",
                                                           "end": "2026-11-25"})  # fmt: skip
    assert NUMBER in found.content.decode()


def test_a_period_ending_before_it_starts_is_a_clear_error(staff_of, point):
    signed(point)
    client = staff_of(READ_ONLY)
    query = {"start": "2026-11-30", "end": "2026-11-01"}
    page = client.get(reverse("staff:consent-ledger"), query)
    assert page.status_code == 400 and b"ends before it starts" in page.content
    export = client.get(reverse("staff:consent-export"), {"start": "nonsense"})
    assert export.status_code == 400 and b"not valid" in export.content


def test_the_export_has_what_a_carrier_asks_for(staff_of, point, site):
    _record, png = signed(point)
    client = staff_of(READ_ONLY)
    response = client.get(reverse("staff:consent-export"), {"start": "2026-11-01"})
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["address"] == NUMBER and row["channel"] == "sms" and row["action"] == "grant"
    assert row["source"] == "signature_pad" and row["wording_version"] == "pos-3"
    assert row["wording"] == "I agree =1+1" and row["captured_by"] == "pos"
    assert row["signature_sha256"] == hashlib.sha256(png).hexdigest()
    assert row["patient"] == "Ana Lopez" and row["contact"] == "Rosa Lopez"
    assert row["time_zone"] == "America/New_York" and row["recorded_at"].startswith("2026-11-25")
    assert AuditEvent.objects.filter(action="export", object_type="people.consentrecord").exists()


def test_an_exported_text_cell_never_starts_a_formula(staff_of, point):
    consent.record_consent(point, "sms", "grant", source="paper", wording="=HYPERLINK(1)",
                           wording_version="v1", system="import")  # fmt: skip
    response = staff_of(READ_ONLY).get(reverse("staff:consent-export"))
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK(1)" in body


def test_the_ledger_and_export_hold_nothing_of_another_organization(outsider, point):
    signed(point)
    page = outsider.get(reverse("staff:consent-ledger")).content.decode()
    assert NUMBER not in page
    export = b"".join(outsider.get(reverse("staff:consent-export")).streaming_content).decode()
    assert NUMBER not in export and len(export.strip().splitlines()) == 1


# The wording -------------------------------------------------------------------------------


def test_an_administrator_publishes_a_new_wording_version(staff_of, site, point):
    client = staff_of(SYSTEM_ADMINISTRATOR)
    response = client.post(reverse("staff:consent-wording"),
                           {"version": "2026-12", "wording": "Texts from Maple, yes."})  # fmt: skip
    assert response.status_code == 302
    assert consent.current_wording(site) == ("2026-12", "Texts from Maple, yes.")
    page = client.get(form_url(point)).content.decode()
    assert "Texts from Maple, yes." in page and "2026-12" in page


def test_front_desk_may_not_change_the_wording(staff_of):
    response = staff_of(FRONT_DESK).post(reverse("staff:consent-wording"),
                                         {"version": "x", "wording": "y"})  # fmt: skip
    assert response.status_code == 403 and ConsentWording.objects.count() == 0


def test_a_blank_wording_is_refused(staff_of):
    client = staff_of(SYSTEM_ADMINISTRATOR)
    client.post(reverse("staff:consent-wording"), {"version": "v2", "wording": ""})
    assert ConsentWording.objects.count() == 0


def test_the_nav_links_the_ledger(staff_of):
    page = staff_of(READ_ONLY).get(reverse("staff:home")).content.decode()
    assert reverse("staff:consent-ledger") in page
