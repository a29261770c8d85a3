"""Message formats: the list and its filters, the editor, its live preview, and the
format in use handed over when another is put in use."""

from __future__ import annotations

import json

import pytest

from carebell.audit.models import AuditEvent
from carebell.messaging.models import MessageTemplate
from carebell.sites.roles import FRONT_DESK, PHARMACY_STAFF, READ_ONLY, SYSTEM_ADMINISTRATOR
from tests.web.staff.conftest import ROLES

pytestmark = pytest.mark.django_db

EDITORS = {SYSTEM_ADMINISTRATOR, PHARMACY_STAFF}


def make_format(site, **fields) -> MessageTemplate:
    fields = {
        "channel": "sms",
        "kind": "appt_reminder",
        "language": "en",
        "name": "Reminder text",
        "subject": "Reminder",
        "body": "#SITENAME#: #PATIENTFIRSTNAME# has a visit on #APPTDATE#. Reply STOP to end.",
        "in_use": True,
        **fields,
    }
    template = MessageTemplate(site=site, **fields)
    template.save()
    return template


def editor_data(**changes) -> dict:
    data = {
        "channel": "sms",
        "kind": "appt_reminder",
        "language": "en",
        "name": "Second reminder",
        "subject": "Reminder",
        "body": "#SITENAME#: see you on #APPTDATE# at #APPTTIME#. Reply STOP to end.",
        "in_use": "on",
        "save": "1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def reminder_format(site):
    return make_format(site)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_formats(staff_of, role, reminder_format):
    client = staff_of(role)
    assert client.get("/staff/formats/").status_code == 200
    page = client.get(f"/staff/formats/{reminder_format.pk}/")
    assert page.status_code == 200
    assert reminder_format.name in page.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_only_template_managers_add_or_change_formats(staff_of, role, reminder_format):
    client = staff_of(role)
    new = client.get("/staff/formats/new/").status_code
    change = client.post(f"/staff/formats/{reminder_format.pk}/", editor_data()).status_code
    preview = client.post("/staff/formats/preview/", {"channel": "sms"}).status_code
    if role in EDITORS:
        assert (new, change) == (200, 302)
        assert preview == 400
    else:
        assert (new, change, preview) == (403, 403, 403)


def test_a_format_of_another_organization_does_not_exist(outsider, reminder_format):
    assert outsider.get(f"/staff/formats/{reminder_format.pk}/").status_code == 404
    assert outsider.post(f"/staff/formats/{reminder_format.pk}/", editor_data()).status_code == 404
    assert reminder_format.name not in outsider.get("/staff/formats/").content.decode()


def test_the_list_filters_by_method_kind_language_and_subject(admin_client_, site):
    make_format(site, name="Reminder text")
    make_format(site, channel="email", name="Reminder email", subject="Your visit")
    make_format(site, kind="birthday", name="Birthday text", subject="Happy birthday",
                body="Happy birthday from #SITENAME#!")  # fmt: skip
    page = admin_client_.get("/staff/formats/", {"channel": "email"}).content.decode()
    assert "Reminder email" in page and "Reminder text" not in page
    page = admin_client_.get("/staff/formats/", {"kind": "birthday"}).content.decode()
    assert "Birthday text" in page and "Reminder email" not in page
    page = admin_client_.get("/staff/formats/", {"subject": "visit"}).content.decode()
    assert "Reminder email" in page and "Birthday text" not in page
    page = admin_client_.get("/staff/formats/", {"language": "es"}).content.decode()
    assert "No message format matches" in page


def test_a_bad_filter_is_ignored_not_a_500(admin_client_, reminder_format):
    assert admin_client_.get("/staff/formats/", {"kind": "nonsense"}).status_code == 200


def test_adding_a_format_in_use_takes_over_from_the_one_in_use(admin_client_, reminder_format):
    response = admin_client_.post("/staff/formats/new/", editor_data())
    assert response.status_code == 302
    added = MessageTemplate.objects.get(name="Second reminder")
    reminder_format.refresh_from_db()
    assert added.in_use and not reminder_format.in_use
    assert AuditEvent.objects.filter(object_id=str(added.pk), action="create").exists()


def test_adding_a_format_not_in_use_leaves_the_one_in_use(admin_client_, reminder_format):
    admin_client_.post("/staff/formats/new/", editor_data(in_use=None))
    reminder_format.refresh_from_db()
    assert reminder_format.in_use
    assert not MessageTemplate.objects.get(name="Second reminder").in_use


def test_putting_an_old_format_back_in_use_swaps_again(admin_client_, reminder_format, site):
    spare = make_format(site, name="Spare", in_use=False)
    data = editor_data(name="Spare", body=spare.body)
    assert admin_client_.post(f"/staff/formats/{spare.pk}/", data).status_code == 302
    in_use = MessageTemplate.objects.filter(site=site, in_use=True)
    assert list(in_use.values_list("name", flat=True)) == ["Spare"]


def test_an_unknown_placeholder_is_refused_with_its_line_and_column(admin_client_, reminder_format):
    body = "Hello\nSee you #APPTDAY#. Reply STOP to end."
    response = admin_client_.post(f"/staff/formats/{reminder_format.pk}/", editor_data(body=body))
    page = response.content.decode()
    assert response.status_code == 200
    assert "#APPTDAY# at body line 2, column 9" in page
    reminder_format.refresh_from_db()
    assert "APPTDAY" not in reminder_format.body


def test_a_placeholder_of_another_kind_is_refused(admin_client_, reminder_format):
    data = editor_data(body="#DRUGNAME# is waiting. Reply STOP to end.")
    page = admin_client_.post(f"/staff/formats/{reminder_format.pk}/", data).content.decode()
    assert "not available in appt_reminder templates" in page


def test_nonsense_choices_get_form_errors(admin_client_):
    data = editor_data(channel="fax", kind="nope", language="xx")
    response = admin_client_.post("/staff/formats/new/", data)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_saving_shows_the_warnings_it_saved_with(admin_client_, reminder_format):
    body = "Your Amoxicillin is ready at #SITENAME#. Reply STOP to end."
    response = admin_client_.post(
        f"/staff/formats/{reminder_format.pk}/", editor_data(body=body), follow=True
    )
    assert "saved" in response.content.decode()
    reminder_format.refresh_from_db()
    assert reminder_format.body == body


def test_load_default_fills_the_editor_without_saving(admin_client_, reminder_format):
    data = editor_data(body="x", save=None, load_default="1")
    response = admin_client_.post(f"/staff/formats/{reminder_format.pk}/", data)
    page = response.content.decode()
    assert "Default loaded" in page
    assert "#APPTDATE#" in page
    reminder_format.refresh_from_db()
    assert reminder_format.body != "x"


def test_restore_default_saves_carebell_s_default(admin_client_, reminder_format):
    admin_client_.post(f"/staff/formats/{reminder_format.pk}/", {"restore": "1"})
    reminder_format.refresh_from_db()
    assert reminder_format.is_default
    assert reminder_format.in_use


def test_the_preview_button_renders_without_script(admin_client_, reminder_format):
    data = editor_data(body="Hi #PATIENTFIRSTNAME# from #SITENAME#", save=None, preview="1")
    page = admin_client_.post(f"/staff/formats/{reminder_format.pk}/", data).content.decode()
    assert "Hi Alexandra from" in page
    reminder_format.refresh_from_db()
    assert "Hi" not in reminder_format.body


def preview(client, **fields) -> dict:
    data = {"channel": "sms", "kind": "appt_reminder", "language": "en", **fields}
    response = client.post("/staff/formats/preview/", data)
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_preview_counts_a_gsm_extension_character_twice(admin_client_):
    fits = preview(admin_client_, body="a" * 158 + "€")
    assert (fits["encoding"], fits["units"], fits["segments"]) == ("GSM-7", 160, 1)
    over = preview(admin_client_, body="a" * 159 + "€")
    assert (over["units"], over["segments"]) == (161, 2)


def test_the_preview_names_the_character_forcing_ucs2_and_its_replacement(admin_client_):
    data = preview(admin_client_, body="It\u2019s #SITENAME#. Reply STOP to end.")
    assert data["encoding"] == "UCS-2"
    assert data["culprits"][0]["replacement"] == "'"
    assert data["culprits"][0]["codepoint"] == "U+2019"


def test_the_preview_renders_sample_data_and_errors_with_line_and_column(admin_client_, site):
    data = preview(admin_client_, body="#SITENAME# #BOGUS#")
    assert data["body"].startswith(site.name)
    assert data["errors"][0]["line"] == 1 and data["errors"][0]["column"] == 12
    assert "#PATIENTFIRSTNAME#" in [p["token"] for p in data["placeholders"]]
    assert "#DRUGNAME#" not in [p["token"] for p in data["placeholders"]]


def test_the_html_part_is_previewed_only_inside_a_sandboxed_frame(admin_client_):
    html = '<p style="color:red">Hi #PATIENTFIRSTNAME#</p><script>alert(1)</script>'
    data = preview(admin_client_, channel="email", subject="Hi", body="Hi", html_body=html)
    assert data["html"].startswith('<p style="color:red">Hi Alexandra</p>')
    page = admin_client_.post(
        "/staff/formats/new/",
        editor_data(channel="email", kind="appt_reminder", html_body=html, save=None, preview="1"),
    ).content.decode()
    frame = page[page.index("<iframe") : page.index("</iframe>")]
    assert 'sandbox=""' in frame and "srcdoc=" in frame
    assert "&lt;script&gt;" in frame  # escaped into the attribute, parsed only by the frame
    assert "<script>alert(1)" not in page


def test_the_preview_warns_of_restricted_words(admin_client_):
    data = preview(admin_client_, body="Ask us about cannabis at #SITENAME#. Reply STOP to end.")
    assert any(w["code"] == "word_restricted" for w in data["warnings"])


def test_the_preview_refuses_bad_fields_with_400_and_get_with_405(admin_client_):
    bad = admin_client_.post("/staff/formats/preview/", {"channel": "fax", "kind": "x"})
    assert bad.status_code == 400
    assert "channel" in json.loads(bad.content)["field_errors"]
    assert admin_client_.get("/staff/formats/preview/").status_code == 405


def test_the_preview_needs_the_csrf_token(site):
    from django.test import Client

    from tests import factories

    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.make_staff(site, SYSTEM_ADMINISTRATOR))
    assert client.post("/staff/formats/preview/", {"channel": "sms"}).status_code == 403


def test_front_desk_sees_no_edit_buttons(staff_of, reminder_format):
    page = staff_of(FRONT_DESK).get(f"/staff/formats/{reminder_format.pk}/").content.decode()
    assert 'name="save"' not in page and "formats.js" not in page
    assert staff_of(READ_ONLY).get("/staff/formats/").status_code == 200


def test_the_admin_adds_a_second_format_in_use_without_a_constraint_error(
    admin_client, reminder_format, site
):
    from django.urls import reverse

    data = {**editor_data(), "site": site.pk}
    response = admin_client.post(reverse("admin:messaging_messagetemplate_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    reminder_format.refresh_from_db()
    assert not reminder_format.in_use
    assert MessageTemplate.objects.get(name="Second reminder").in_use
