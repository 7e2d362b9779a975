# The trace by (series, step, time): a series' counts over a chosen period and the people behind
# a count, newest first, read the rows from a moment on instead of every row of the series.
# Built concurrently: the engine writes trace rows all the time.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("automations", "0004_builder_drafts"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["series", "step_key", "ran_at"], name="trace_series_step_time"),
        ),
    ]
