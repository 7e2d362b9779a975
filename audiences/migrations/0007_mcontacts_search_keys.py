# Substring search on a contact's address and names through a trigram index (GIN).
#
# pg_trgm where the server has it (a PostgreSQL server with contrib: production, CI): its
# gin_trgm_ops index on the lower-cased text serves the search's LIKE '%…%' directly.
# The embedded server (the pgserver wheel) ships without contrib, so there the trigrams are our
# own: esp_search_keys() gives every trigram of the lower-cased text (built-in GIN array_ops),
# and the search adds "holds every trigram of the query"
# beside its LIKE (audiences/filters.py reads which index this database got). It is made of
# scalar C functions the planner inlines: the text cut into threes at offsets 0, 1 and 2 is
# every trigram, plus cut-off tails (one or two characters, and empty keys), which no search
# asks for; esp_search_query_keys() gives only the true trigrams of a search. No key for the
# workspace: one held by every contact of a big workspace made each lookup walk its posting
# tree (30 ms instead of 0.2 ms at 266,666 contacts); the workspace is tested on the rows found.
#
# Either index is named contact_search. Built concurrently: the contacts table is written by
# imports and ingestion all the time.

from django.db import DatabaseError, migrations, transaction

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION esp_search_keys(body text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_to_array(
        regexp_replace(lower(body), '(...)', E'\\1\x01', 'g') || E'\x01'
        || regexp_replace(substr(lower(body), 2), '(...)', E'\\1\x01', 'g') || E'\x01'
        || regexp_replace(substr(lower(body), 3), '(...)', E'\\1\x01', 'g'),
        E'\x01')
$$;
CREATE OR REPLACE FUNCTION esp_search_query_keys(query text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT DISTINCT substr(s.t, i, 3) FROM (SELECT lower(query) AS t) s,
                 generate_series(1, length(s.t) - 2) i)
$$;
"""
BODY = "(email || ' ' || first_name || ' ' || last_name)"
TRIGRAM_INDEX = f"""
CREATE INDEX CONCURRENTLY IF NOT EXISTS contact_search ON audiences_contact USING gin
    (lower{BODY} gin_trgm_ops)
"""
OWN_INDEX = f"""
CREATE INDEX CONCURRENTLY IF NOT EXISTS contact_search ON audiences_contact USING gin
    (esp_search_keys{BODY})
"""


def _pg_trgm(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return False
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError:  # there, but this role may not create it
            return False
    return True


def create(apps, schema_editor) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(FUNCTIONS)
    trigram = _pg_trgm(connection)
    with connection.cursor() as cursor:
        cursor.execute(TRIGRAM_INDEX if trigram else OWN_INDEX)


def drop(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS contact_search")
        cursor.execute(
            "DROP FUNCTION IF EXISTS esp_search_keys(text); DROP FUNCTION IF EXISTS esp_search_query_keys(text)"
        )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0006_facts_products_gin"),
    ]

    operations = [migrations.RunPython(create, drop)]
