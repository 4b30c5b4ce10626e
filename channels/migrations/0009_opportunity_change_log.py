"""Log which opportunities each transaction changed, on PostgreSQL, for readers that keep the
deals between runs and read again only those changed since (`analytics.kept_rows`).

The database keeps the log itself, so that no write path (the ORM, the import's `COPY`, an
`UPDATE` typed by hand, a cascade) can change a deal without it:

- `channels_opportunity_change`: one row per deal an `INSERT`, `UPDATE` or `DELETE` touched,
  with the writing transaction's id; a statement touching more than 10,000 deals logs one row
  with no deal instead (read everything again), which keeps an import of a million deals from
  writing a million log rows.
- `channels_opportunity_change_horizon`: one row, the newest transaction id of any log row
  pruned, or of a `TRUNCATE` of the opportunities or of the log. A reader whose deals were read
  in a snapshot that might not see that transaction reads them all again; without the row (its
  table truncated) every reader does.

Statement-level triggers with transition tables log a whole statement at once. SQLite has no
log: its readers always read the deals.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

CREATE = """
CREATE TABLE channels_opportunity_change (
    opportunity_id bigint,
    xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    logged_at timestamptz NOT NULL DEFAULT statement_timestamp()
);
COMMENT ON TABLE channels_opportunity_change IS
    'The opportunities each transaction changed (no opportunity: read all again).';
CREATE INDEX channels_opportunity_change_xid ON channels_opportunity_change (xid);

CREATE TABLE channels_opportunity_change_horizon (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    xid bigint NOT NULL
);
INSERT INTO channels_opportunity_change_horizon (xid)
    VALUES (pg_current_xact_id()::text::bigint);

CREATE FUNCTION channels_opportunity_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM (SELECT FROM changed LIMIT 10001) AS first_rows) > 10000 THEN
        INSERT INTO channels_opportunity_change (opportunity_id) VALUES (NULL);
    ELSE
        INSERT INTO channels_opportunity_change (opportunity_id) SELECT id FROM changed;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION channels_opportunity_change_horizon_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO channels_opportunity_change_horizon (xid)
        VALUES (pg_current_xact_id()::text::bigint)
        ON CONFLICT (id) DO UPDATE SET xid = EXCLUDED.xid;
    RETURN NULL;
END
$$;

CREATE TRIGGER channels_opportunity_inserted AFTER INSERT ON channels_opportunity
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION channels_opportunity_changed();
CREATE TRIGGER channels_opportunity_updated AFTER UPDATE ON channels_opportunity
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION channels_opportunity_changed();
CREATE TRIGGER channels_opportunity_deleted AFTER DELETE ON channels_opportunity
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION channels_opportunity_changed();
CREATE TRIGGER channels_opportunity_truncated AFTER TRUNCATE ON channels_opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION channels_opportunity_change_horizon_moved();
CREATE TRIGGER channels_opportunity_change_truncated AFTER TRUNCATE
    ON channels_opportunity_change
    FOR EACH STATEMENT EXECUTE FUNCTION channels_opportunity_change_horizon_moved();
"""

DROP = """
DROP TRIGGER channels_opportunity_inserted ON channels_opportunity;
DROP TRIGGER channels_opportunity_updated ON channels_opportunity;
DROP TRIGGER channels_opportunity_deleted ON channels_opportunity;
DROP TRIGGER channels_opportunity_truncated ON channels_opportunity;
DROP TABLE channels_opportunity_change;
DROP TABLE channels_opportunity_change_horizon;
DROP FUNCTION channels_opportunity_changed();
DROP FUNCTION channels_opportunity_change_horizon_moved();
"""


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(CREATE)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0008_opportunity_cents"),
    ]

    operations = [migrations.RunPython(create, drop)]
