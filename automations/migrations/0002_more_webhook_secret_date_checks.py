"""Series get a webhook signing secret each (a random one per existing series, not the one value
AddField would give them all) and the moment their date trigger was last checked up to."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

import automations.models


def _distinct_secrets(apps: Any, schema_editor: Any) -> None:
    Series = apps.get_model("automations", "Series")
    for series in Series.objects.only("pk").iterator():
        Series.objects.filter(pk=series.pk).update(webhook_secret=automations.models.new_webhook_secret())


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0001_series_engine"),
    ]

    operations = [
        migrations.AddField(
            model_name="series",
            name="dates_checked_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="series",
            name="webhook_secret",
            field=models.CharField(
                default=automations.models.new_webhook_secret, max_length=64, verbose_name="webhook signing secret"
            ),
        ),
        migrations.RunPython(_distinct_secrets, migrations.RunPython.noop),
    ]
