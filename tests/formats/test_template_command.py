import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def run(*args):
    out = StringIO()
    call_command("template", "preview", *args, stdout=out)
    return out.getvalue()


def test_it_previews_an_sms_body_with_its_figures():
    out = run("--channel", "sms", "--kind", "appt_reminder", "--body",
              "#SITENAME#: see you #APPTDATE#. STOP to opt out")  # fmt: skip
    assert "Maple Street Clinic: see you Wed, Sep 30. STOP to opt out" in out
    assert "encoding: GSM-7" in out
    assert "segments: 1" in out
    assert f"characters: {len('Maple Street Clinic: see you Wed, Sep 30. STOP to opt out')}" in out


def test_it_prints_one_json_object_with_json():
    out = run("--json", "--channel", "sms", "--language", "es", "--kind", "rx_ready", "--body",
              "#SITENAME#: listo \u201cya\u201d")  # fmt: skip
    result = json.loads(out)
    assert {"subject", "body", "encoding", "characters", "segments", "warnings"} <= set(result)
    assert result["encoding"] == "UCS-2"
    assert any("forces UCS-2" in w for w in result["warnings"])


def test_it_previews_an_email_subject_and_a_call_script():
    assert "subject: Hi Alexandra" in run("--channel", "email", "--subject", "Hi "
                                          "#PATIENTFIRSTNAME#", "--body", "#SITENAME#")  # fmt: skip
    assert "five five five" in run("--channel", "call", "--body", "#SITEPHONE#")


def test_it_shows_errors_for_placeholders_the_kind_may_not_use_and_fails():
    out = StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("template", "preview", "--channel", "sms", "--kind", "birthday",
                     "--body", "#CODE#", stdout=out)  # fmt: skip
    assert "error: #CODE# at body line 1, column 1" in out.getvalue()


@pytest.mark.real_clock
def test_a_template_with_errors_exits_non_zero_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(CAREBELL_DEBUG="1", CAREBELL_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "carebell", "template", "preview", "--channel", "sms",
         "--kind", "birthday", "--body", "#CODE#"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error: #CODE#" in result.stdout
    assert "Traceback" not in result.stderr


def test_it_needs_a_channel_with_a_body():
    with pytest.raises(CommandError, match="--channel"):
        run("--body", "hello")


@pytest.mark.django_db
def test_it_says_clearly_when_a_template_does_not_exist():
    with pytest.raises(CommandError, match="no template with id 424242"):
        run("--template", "424242")


def test_it_previews_a_saved_template(site):
    from carebell.messaging.models import MessageTemplate

    template = MessageTemplate.objects.create(
        site=site, channel="sms", kind="appt_reminder", language="en", name="Reminder",
        subject="Reminder", body="#SITENAME#: see you #APPTTIME#. STOP to opt out",
    )  # fmt: skip
    out = run("--template", str(template.pk))
    assert f"{site.name}: see you " in out
    assert "segments: 1" in out
