"""Factories with keyword overrides for carebell's models.

Each returns a saved object with believable defaults; pass keywords to change
any field. Phone numbers come from the fictional 555-01xx range.
"""

from __future__ import annotations

import datetime as dt
import itertools

from django.contrib.auth.models import Group, User
from django.utils import timezone

from carebell.appointments.models import Appointment
from carebell.core.vocab import ContactPointKind, Relationship, SiteKind
from carebell.people.models import Contact, ContactPoint, ContactPreference, Patient
from carebell.pharmacy.models import Fill, Prescription
from carebell.sites.models import DeliverySettings, Organization, Site, StaffMembership

_ids = itertools.count(1)


def make_org(**fields) -> Organization:
    n = next(_ids)
    fields = {"name": f"Org {n}", "slug": f"org-{n}", **fields}
    return Organization.objects.create(**fields)


def make_site(organization: Organization | None = None, **fields) -> Site:
    n = next(_ids)
    organization = organization or make_org()
    fields = {
        "name": f"Site {n}",
        "kind": SiteKind.CLINIC,
        "time_zone": "America/New_York",
        "phone": "+12025550100",
        **senders_of(organization),
        **fields,
    }
    site = Site.objects.create(organization=organization, **fields)
    DeliverySettings.defaults_for(site).save()
    return site


def senders_of(organization: Organization) -> dict[str, str]:
    """The sending identities the factory gives an organization's sites: shared by
    its sites, its own (a sender belongs to one organization). The first sends as
    +12025550199 and hello@example.org, the next as +12025550198, and so on."""
    n = Organization.objects.filter(id__lt=organization.id).count()
    return {
        "sms_from": f"+120255501{99 - n % 50:02d}",
        "email_from": f"hello@{f'org{n}.' if n else ''}example.org",
    }


def make_patient(site: Site, **fields) -> Patient:
    n = next(_ids)
    fields = {
        "external_id": f"P{n}",
        "first_name": "Avery",
        "last_name": f"Example{n}",
        "birth_date": dt.date(2015, 6, 1),
        **fields,
    }
    return Patient.objects.create(site=site, **fields)


def make_contact(patient: Patient, **fields) -> Contact:
    position = fields.pop("position", patient.contacts.count() + 1)
    fields = {
        "relationship": Relationship.MOTHER,
        "first_name": "Jordan",
        "last_name": patient.last_name,
        **fields,
    }
    return Contact.objects.create(patient=patient, position=position, **fields)


def add_point(contact: Contact, kind: ContactPointKind, value: str, **fields) -> ContactPoint:
    return ContactPoint.objects.create(contact=contact, kind=kind, value=value, **fields)


def set_preference(contact: Contact, category: str, value: str) -> ContactPreference:
    pref, _ = ContactPreference.objects.update_or_create(
        contact=contact, category=category, defaults={"value": value}
    )
    return pref


def make_appointment(patient: Patient, **fields) -> Appointment:
    n = next(_ids)
    fields = {
        "external_id": f"A{n}",
        "starts_at": timezone.now() + dt.timedelta(days=5),
        "provider_name": "Dr. Rivera",
        "location_name": "Main Street",
        **fields,
    }
    return Appointment.objects.create(site=patient.site, patient=patient, **fields)


def make_prescription(patient: Patient, **fields) -> Prescription:
    n = next(_ids)
    fields = {
        "rx_number": f"RX{n}",
        "drug_name": "Lisinopril 10 mg",
        "refills_authorized": 5,
        "refills_remaining": 3,
        **fields,
    }
    return Prescription.objects.create(site=patient.site, patient=patient, **fields)


def make_fill(prescription: Prescription, **fields) -> Fill:
    fields = {
        "fill_number": prescription.fills.count(),
        "filled_on": dt.date.today(),
        "days_supply": prescription.days_supply,
        **fields,
    }
    return Fill.objects.create(prescription=prescription, **fields)


#: Every staff member made here signs in with this.
STAFF_PASSWORD = "a-long-test-password"


def make_staff(site: Site, role: str, username: str | None = None) -> User:
    user = User.objects.create_user(
        username=username or f"staff{next(_ids)}",
        password=STAFF_PASSWORD,
        is_staff=True,
    )
    user.groups.add(Group.objects.get(name=role))
    StaffMembership.objects.create(user=user, site=site)
    return user
