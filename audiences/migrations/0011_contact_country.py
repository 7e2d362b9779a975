# Contacts by (workspace, country, id): "country = X" in a segment or on the contacts page
# becomes an index-only range of ids instead of a read of every contact of the workspace.
# Built concurrently: the contacts table is written by imports and ingestion all the time.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0010_mfacts_event_contact_orders"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="contact",
            index=models.Index(fields=["workspace", "country", "id"], name="contact_country"),
        ),
    ]
