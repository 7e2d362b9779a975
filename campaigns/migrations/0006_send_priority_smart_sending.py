"""Send priority, smart sending and a message's own subject.

The new columns have constant defaults (no table rewrite). The claim's index gains the
priority: it is built beside the old one without blocking the send loop (CONCURRENTLY, hence
a migration outside a transaction), then takes the old one's place and name.
"""

import django.core.validators
import esp.clock
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0010_mfacts_event_contact_orders"),
        ("campaigns", "0005_pgb_pooler_safe_send"),
        ("esp", "0003_first_workspace_currency"),
    ]

    operations = [
        migrations.AddField(
            model_name="deliverysettings",
            name="smart_sending_hours",
            field=models.PositiveSmallIntegerField(
                default=16,
                help_text="Series emails that use smart sending skip a contact who got marketing mail within this many hours. 0 turns it off.",
                validators=[django.core.validators.MaxValueValidator(168)],
                verbose_name="smart sending window (hours)",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="priority",
            field=models.PositiveSmallIntegerField(
                choices=[(10, "Promotional"), (20, "Triggered"), (30, "Transactional")], default=10
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="smart_sending",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="message",
            name="subject_override",
            field=models.CharField(blank=True, default="", max_length=998),
        ),
        migrations.AlterField(
            model_name="message",
            name="due_at",
            field=models.DateTimeField(default=esp.clock.now),
        ),
        migrations.AlterField(
            model_name="message",
            name="reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("suppressed", "Address is on the suppression list"),
                    ("unsubscribed", "Unsubscribed from the list"),
                    ("no_postal_address", "The workspace has no postal address"),
                    ("daily_cap", "Daily frequency cap reached"),
                    ("weekly_cap", "Weekly frequency cap reached"),
                    ("quiet_hours", "Delayed by quiet hours"),
                    ("no_email", "Contact has no address (erased)"),
                    ("render_error", "The template could not be rendered"),
                    ("rejected", "Rejected by the provider"),
                    ("retries_exhausted", "Provider kept failing"),
                    ("crashed", "Worker stopped while sending"),
                    ("smart_sending", "Mailed recently (smart sending)"),
                    ("series_ended", "The contact left the series"),
                    ("flow_filter", "No longer matches the series' filter"),
                    ("series_paused", "The series is paused"),
                    ("gate_error", "A send rule kept failing"),
                ],
                default="",
                max_length=32,
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("state", "queued")),
                fields=["due_at", "-priority", "id"],
                name="message_due_priority",
            ),
        ),
        RemoveIndexConcurrently(model_name="message", name="message_due"),
        migrations.RenameIndex(model_name="message", new_name="message_due", old_name="message_due_priority"),
    ]
