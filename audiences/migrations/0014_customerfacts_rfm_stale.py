# The scored rows that are no longer customers', which the RFM scoring clears: without this
# (nearly always empty) index, finding them was a read of the whole facts table on every run.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0013_contact_search_text"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customerfacts",
            index=models.Index(
                condition=models.Q(
                    models.Q(("last_order_at__isnull", False), ("orders_count__gt", 0), _negated=True),
                    models.Q(
                        ("recency_score__isnull", False), models.Q(("rfm_segment", ""), _negated=True), _connector="OR"
                    ),
                ),
                fields=["workspace"],
                name="facts_rfm_stale",
            ),
        ),
    ]
