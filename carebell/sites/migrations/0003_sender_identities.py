"""Sending identities in one spelling, each held by one organization.

Existing values are rewritten in their one spelling (E.164 numbers, Messaging Service
ids, email domains in lower case); a value that reads as no identity is kept as it
is, for an administrator to correct. If two organizations send as the same identity,
the migration stops and says which sites: the replies to that sender cannot be given
to either until someone decides whose it is.
"""

import django.db.models.deletion
from django.db import migrations, models

from carebell.core import senders

FIELDS = ("sms_from", "caller_id", "email_from")


class SharedSender(Exception):
    pass


def _spelling(site, field: str) -> str:
    value = getattr(site, field)
    region = site.phone_region or "US"
    readers = {
        "sms_from": lambda v: senders.normalise_sms_sender(v, region),
        "caller_id": lambda v: senders.normalise_phone(v, region),
        "email_from": senders.normalise_email,
    }
    try:
        return readers[field](value) if value else ""
    except ValueError:
        return value


def hold_existing_senders(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    SenderIdentity = apps.get_model("sites", "SenderIdentity")
    holders: dict[str, dict[int, list[int]]] = {}
    for site in Site.objects.order_by("id"):
        spelled = {field: _spelling(site, field) for field in FIELDS}
        if any(spelled[f] != getattr(site, f) for f in FIELDS):
            Site.objects.filter(pk=site.pk).update(**spelled)
        for value in set(spelled.values()) - {""}:
            holders.setdefault(value, {}).setdefault(site.organization_id, []).append(site.pk)
    shared = {value: orgs for value, orgs in holders.items() if len(orgs) > 1}
    if shared:
        lines = [
            f"  {value}: sites {', '.join(str(i) for ids in orgs.values() for i in ids)}"
            for value, orgs in sorted(shared.items())
        ]
        raise SharedSender(
            "Sites of different organizations send as the same sender; each sender must "
            "belong to one organization (replies and STOPs to it go there). Give one "
            "side another sender (or leave it blank for carebell's default), then run "
            "migrate again:\n" + "\n".join(lines)
        )
    SenderIdentity.objects.bulk_create(
        [
            SenderIdentity(value=value, organization_id=next(iter(orgs)))
            for value, orgs in sorted(holders.items())
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("sites", "0002_roles")]

    operations = [
        migrations.AlterField(
            model_name="site",
            name="sms_from",
            field=models.CharField(
                blank=True,
                help_text="SMS number (E.164), short code, or Messaging Service id (MG…), "
                "whose numbers are then listed under Sender numbers. Blank: carebell's "
                "default sender.",
                max_length=64,
            ),
        ),
        migrations.CreateModel(
            name="SiteSenderNumber",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "number",
                    models.CharField(
                        help_text="E.164, e.g. +12025550199.", max_length=32, unique=True
                    ),
                ),
                (
                    "site",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sender_numbers",
                        to="sites.site",
                    ),
                ),
            ],
            options={"abstract": False},
        ),
        migrations.CreateModel(
            name="SenderIdentity",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("value", models.CharField(max_length=254, unique=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sender_identities",
                        to="sites.organization",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "sender identities",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("value", ""), _negated=True),
                        name="sender_identity_not_blank",
                    )
                ],
            },
        ),
        migrations.RunPython(hold_existing_senders, migrations.RunPython.noop),
    ]
