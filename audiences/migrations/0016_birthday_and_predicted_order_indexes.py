# Date triggers of series look every minute for the contacts whose day has come: birthdays by
# month and day, predicted next orders by a time range. Without these indexes each look read
# every contact (or every customer's facts) of the workspace.
#
# The birthday index is on the expression the date trigger filters by (written the same way in
# automations/engine/dates.py, so the planner matches them); EXTRACT on a date is immutable.

from django.db import migrations

BIRTHDAY = """
CREATE INDEX IF NOT EXISTS contact_birthday ON audiences_contact
    (workspace_id, (extract(month FROM birth_date) * 100 + extract(day FROM birth_date)))
    WHERE birth_date IS NOT NULL
"""
PREDICTED = """
CREATE INDEX IF NOT EXISTS facts_predicted_order ON audiences_customerfacts (workspace_id, predicted_next_order_at)
    WHERE predicted_next_order_at IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [("audiences", "0015_more_consent_source_series")]

    operations = [
        migrations.RunSQL(BIRTHDAY, "DROP INDEX IF EXISTS contact_birthday"),
        migrations.RunSQL(PREDICTED, "DROP INDEX IF EXISTS facts_predicted_order"),
    ]
