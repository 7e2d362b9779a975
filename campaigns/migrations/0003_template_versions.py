# Snapshots of the template versions the send loop rendered, and the one a message was rendered
# with. campaigns_message is big: its new column is nullable without a default (no rewrite), and
# the column's CHECK (>= 0) is added NOT VALID — Django's inline CHECK would make PostgreSQL read
# the whole table under the ALTER's exclusive lock to verify rows that are all NULL; new and
# updated rows are checked all the same.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_message_fk_indexes_where_set"),
        ("esp", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="message",
                    name="template_version",
                    field=models.PositiveIntegerField(blank=True, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "campaigns_message" ADD COLUMN "template_version" integer NULL',
                        'ALTER TABLE "campaigns_message" ADD CONSTRAINT "campaigns_message_template_version_check" '
                        'CHECK ("template_version" >= 0) NOT VALID',
                    ],
                    reverse_sql='ALTER TABLE "campaigns_message" DROP COLUMN "template_version"',
                ),
            ],
        ),
        migrations.CreateModel(
            name="EmailTemplateVersion",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("version", models.PositiveIntegerField()),
                ("subject", models.CharField(max_length=998)),
                ("preheader", models.CharField(blank=True, default="", max_length=255)),
                ("mjml", models.TextField()),
                ("text_body", models.TextField(blank=True, default="")),
                ("compiled_html", models.TextField()),
                ("digest", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "template",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="campaigns.emailtemplate",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="esp.workspace"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("template", "version", "digest"), name="template_version_unique")
                ],
            },
        ),
    ]
