# Every column RFM scoring reads, over the customers it scores, in recency order: the scoring's
# passes become index-only scans and the recency rank needs no sort. Built concurrently: facts
# are written by ingestion all the time.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0011_contact_country"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="customerfacts",
            index=models.Index(
                condition=models.Q(("last_order_at__isnull", False), ("orders_count__gt", 0)),
                fields=["workspace", "last_order_at"],
                include=(
                    "orders_count",
                    "revenue",
                    "contact",
                    "recency_score",
                    "frequency_score",
                    "monetary_score",
                    "rfm_segment",
                ),
                name="facts_rfm_rank",
            ),
        ),
    ]
