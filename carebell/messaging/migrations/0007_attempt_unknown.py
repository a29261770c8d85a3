# An attempt whose request may have reached the provider without an answer coming
# back is `unknown` (settled by lookup or callback before any resend); the attempt
# statuses are kept to carebell.core.vocab.AttemptStatus in the database.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0006_attempt_lean_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="deliveryattempt",
            name="status",
            field=models.CharField(
                choices=[
                    ("started", "started"),
                    ("unknown", "unknown"),
                    ("queued", "queued"),
                    ("sent", "sent"),
                    ("delivered", "delivered"),
                    ("failed", "failed"),
                ],
                default="started",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="deliveryattempt",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status__in", ["started", "unknown", "queued", "sent", "delivered", "failed"])
                ),
                name="attempt_status_valid",
            ),
        ),
    ]
