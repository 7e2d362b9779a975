# The list, provider and sender foreign keys of campaigns_message are indexed only where set:
# their full indexes served no read of the send loop, and every row version of a send (claimed,
# sending, sent) was written to them. Only the indexes are dropped (the foreign keys stay as
# they are: Django's own AlterField would drop and re-validate them over the whole table).

import django.db.models.deletion
from django.db import migrations, models

FK_INDEXES = {
    "mailing_list": "campaigns_message_mailing_list_id_4c2dfcd6",
    "provider": "campaigns_message_provider_id_17d37729",
    "sender": "campaigns_message_sender_id_5825aa72",
}


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0005_suppression_soft_bounces"),
        ("campaigns", "0001_content_delivery"),
        ("esp", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="mailing_list",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="audiences.mailinglist",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="provider",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="campaigns.provider",
                    ),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="sender",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="campaigns.senderidentity",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{index}" ON "campaigns_message" ("{field}_id")',
                )
                for field, index in FK_INDEXES.items()
            ],
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("mailing_list__isnull", False)),
                fields=["mailing_list"],
                name="message_mailing_list",
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("provider__isnull", False)), fields=["provider"], name="message_provider"
            ),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(condition=models.Q(("sender__isnull", False)), fields=["sender"], name="message_sender"),
        ),
    ]
