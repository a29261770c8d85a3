import pytest
from django.urls import reverse

from carebell.sites.roles import FRONT_DESK
from tests import factories


@pytest.fixture
def front_desk(site):
    user = factories.make_staff(site, FRONT_DESK, username="desk")
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def patients(site, other_org_site):
    ours = factories.make_patient(site, last_name="Ourside")
    theirs = factories.make_patient(other_org_site, last_name="Theirside")
    for patient in (ours, theirs):
        contact = factories.make_contact(patient)
        factories.add_point(contact, "mobile", "+12025550142")
    return ours, theirs


def test_front_desk_sees_patients_of_its_own_site_only(client, front_desk, patients):
    client.force_login(front_desk)
    page = client.get(reverse("admin:people_patient_changelist")).content.decode()
    assert "Ourside" in page
    assert "Theirside" not in page


def test_front_desk_cannot_open_another_organizations_patient(client, front_desk, patients):
    client.force_login(front_desk)
    _, theirs = patients
    response = client.get(reverse("admin:people_patient_change", args=[theirs.pk]))
    assert response.status_code == 302
    assert "Theirside" not in client.get(response.url).content.decode()


def test_front_desk_sees_only_its_own_contacts_and_numbers(client, front_desk, patients):
    client.force_login(front_desk)
    contacts = client.get(reverse("admin:people_contact_changelist")).content.decode()
    points = client.get(reverse("admin:people_contactpoint_changelist")).content.decode()
    assert "Ourside" in contacts and "Theirside" not in contacts
    assert points.count("+12025550142") == 1


def test_front_desk_can_only_choose_its_own_sites(client, front_desk, site, other_org_site):
    client.force_login(front_desk)
    form = client.get(reverse("admin:people_patient_add")).content.decode()
    assert site.name in form
    assert other_org_site.name not in form


def test_front_desk_cannot_attach_a_patient_to_another_organizations_site(
    client, front_desk, other_org_site
):
    client.force_login(front_desk)
    response = client.post(
        reverse("admin:people_patient_add"),
        {
            "site": other_org_site.pk,
            "source": "carebell",
            "external_id": "X1",
            "first_name": "Test",
            "last_name": "Intruder",
            "language": "en",
            "is_active": "on",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_a_superuser_sees_every_organization(admin_client, patients):
    page = admin_client.get(reverse("admin:people_patient_changelist")).content.decode()
    assert "Ourside" in page and "Theirside" in page


def test_front_desk_cannot_see_the_audit_log(client, front_desk):
    client.force_login(front_desk)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
