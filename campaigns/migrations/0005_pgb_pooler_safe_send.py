"""The send loop without session state, so it works through PgBouncer in transaction pooling.

- `campaigns_message_mark_sending`: the one UPDATE each message costs (the previous message's
  `sent` and this one's `sending`), as a PL/pgSQL function. PostgreSQL keeps a function's
  plans per server connection, as it kept the SQL PREPAREd statement it replaces, but a
  function is a database object, not session state: any pooled connection runs it. (Planning
  the statement anew for each message cost more than running it.)
- `campaigns_cap_lease`: the frequency-cap locks, one row per contact a batch is sending capped
  mail to, instead of session advisory locks (a pooled client's unlock may reach another
  server connection and leave the lock held for good). Unlogged: leases only matter while
  PostgreSQL runs, and they are written twice per capped batch.
"""

from __future__ import annotations

from django.db import migrations

# The rows are reached by primary key (`id = ANY`): with the two ORed conditions alone, the
# generic plan took the claim's rows from message_held by claimed_at — the whole batch, ~30
# heap pages, for each message — and filtered two of them out.
MARK_SENDING = """
CREATE FUNCTION campaigns_message_mark_sending(
    bigint, timestamptz, text, text[], text, timestamptz, bigint, timestamptz, text, integer
) RETURNS boolean LANGUAGE plpgsql AS $function$
DECLARE
    marked boolean;
BEGIN
    WITH updated AS (
        UPDATE campaigns_message SET
            state = CASE WHEN id = $1 THEN 'sending' ELSE 'sent' END,
            reason = CASE WHEN id = $1 OR state = 'sending' THEN reason ELSE '' END,
            claimed_at = CASE WHEN id = $1 THEN $2 ELSE claimed_at END,
            subject = CASE WHEN id = $1 THEN $3 ELSE subject END,
            links = CASE WHEN id = $1 THEN $4 ELSE links END,
            to_email = CASE WHEN id = $1 THEN $5 ELSE to_email END,
            template_version = CASE WHEN id = $1 THEN $10 ELSE template_version END,
            sent_at = CASE WHEN id = $7 THEN $8 ELSE sent_at END,
            provider_message_id = CASE WHEN id = $7 THEN $9 ELSE provider_message_id END
        WHERE id = ANY(ARRAY[$1, $7])
            AND ((id = $1 AND state = 'claimed' AND claimed_at = $6)
                 OR (id = $7 AND state IN ('sending', 'in_doubt')))
        RETURNING id
    )
    SELECT coalesce(bool_or(updated.id = $1), false) INTO marked FROM updated;
    RETURN marked;
END
$function$
"""

CAP_LEASE = """
CREATE UNLOGGED TABLE campaigns_cap_lease (
    contact_id bigint PRIMARY KEY,
    holder bigint NOT NULL,
    expires_at timestamptz NOT NULL
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_template_sender_provider"),
    ]

    operations = [
        migrations.RunSQL(
            MARK_SENDING,
            reverse_sql="DROP FUNCTION campaigns_message_mark_sending(bigint, timestamptz, text, text[], text, "
            "timestamptz, bigint, timestamptz, text, integer)",
        ),
        migrations.RunSQL(CAP_LEASE, reverse_sql="DROP TABLE campaigns_cap_lease"),
    ]
