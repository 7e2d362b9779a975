# Substring search on a contact's address and names through an index, on every PostgreSQL this
# project runs on: the embedded server (the pgserver wheel) ships without contrib, so pg_trgm
# is not there. The index holds every trigram of the lower-cased text plus one key for the
# workspace (built-in GIN array_ops); a search looks up its own trigrams in that workspace, and
# the LIKE beside it in the query rechecks the rows found.
#
# esp_search_keys() runs for every contact written, so it is made of scalar C functions the
# planner inlines: the text cut into threes at offsets 0, 1 and 2 is every trigram, plus the
# cut-off tails (one or two characters, and empty keys), which no search asks for.
# esp_search_query_keys() gives only the true trigrams of a search (run once per query).
# Built concurrently: the contacts table is written by imports and ingestion all the time.

from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION esp_search_keys(workspace bigint, body text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_to_array(
        regexp_replace(lower(body), '(...)', E'\\1\x01', 'g') || E'\x01'
        || regexp_replace(substr(lower(body), 2), '(...)', E'\\1\x01', 'g') || E'\x01'
        || regexp_replace(substr(lower(body), 3), '(...)', E'\\1\x01', 'g') || E'\x01'
        || 'ws:' || workspace,
        E'\x01')
$$;
CREATE OR REPLACE FUNCTION esp_search_query_keys(workspace bigint, query text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_append(
        ARRAY(SELECT DISTINCT substr(s.t, i, 3) FROM (SELECT lower(query) AS t) s,
              generate_series(1, length(s.t) - 2) i),
        'ws:' || workspace)
$$;
"""

INDEX = """
CREATE INDEX CONCURRENTLY IF NOT EXISTS contact_search_keys ON audiences_contact USING gin
    (esp_search_keys(workspace_id, (email || ' ' || first_name || ' ' || last_name)))
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("audiences", "0006_facts_products_gin"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTIONS,
            "DROP FUNCTION IF EXISTS esp_search_keys(bigint, text); "
            "DROP FUNCTION IF EXISTS esp_search_query_keys(bigint, text)",
        ),
        migrations.RunSQL(INDEX, "DROP INDEX CONCURRENTLY IF EXISTS contact_search_keys"),
    ]
