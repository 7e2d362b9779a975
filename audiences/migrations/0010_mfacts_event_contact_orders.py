# A partial index of order and refund events by contact, for purchase facts. Built
# concurrently: the event table takes writes all the time and holds millions of rows.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0009_mfacts_recent_events_insight_figures"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(
                condition=models.Q(("name__in", ["Order Completed", "Order Refunded"]), ("type", "track")),
                fields=["contact"],
                name="event_contact_orders",
            ),
        ),
    ]
