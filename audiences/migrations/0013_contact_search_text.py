# The search text stored lower-cased (Contact.search_text, a generated column), and the search
# index contact_search rebuilt on it: a search then compares stored text instead of
# lower-casing each candidate row (what a search matching thousands of contacts spent most on).
# The same two kinds of index as 0007: pg_trgm's where the server has it, our own trigram keys
# where it does not. Adding a stored generated column rewrites the table once.

from django.db import migrations, models
from django.db.models.functions import Lower

BODY = "(email || ' ' || first_name || ' ' || last_name)"


def _own_keys(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef(to_regclass('contact_search')::oid)")
        row = cursor.fetchone()
    return bool(row and row[0] and "esp_search_keys" in row[0])


def _rebuild(schema_editor, expression: str) -> None:
    connection = schema_editor.connection
    own = _own_keys(connection)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS contact_search")
        if own:
            cursor.execute(
                f"CREATE INDEX contact_search ON audiences_contact USING gin (esp_search_keys({expression}))"
            )
        else:
            cursor.execute(f"CREATE INDEX contact_search ON audiences_contact USING gin ({expression} gin_trgm_ops)")


def to_column(apps, schema_editor) -> None:
    _rebuild(schema_editor, "search_text")


def to_expression(apps, schema_editor) -> None:
    _rebuild(schema_editor, f"lower{BODY}" if not _own_keys(schema_editor.connection) else BODY)


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0012_customerfacts_rfm_rank"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                editable=False,
                expression=Lower(
                    models.Func(
                        models.F("email"),
                        models.F("first_name"),
                        models.F("last_name"),
                        arg_joiner=" || ' ' || ",
                        output_field=models.TextField(),
                        template="(%(expressions)s)",
                    )
                ),
                output_field=models.TextField(),
            ),
        ),
        migrations.RunPython(to_column, to_expression),
    ]
