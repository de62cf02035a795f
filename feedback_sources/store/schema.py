"""Every table and index of the store, as numbered migrations applied in order.

A store records how many of them it has run in SQLite's `user_version`; opening a store runs the rest (see
open.Store.migrate, which backs up a store holding data first). A migration that shipped is never edited: a change
is a new migration at the end, written so that it is safe on every store an earlier version left behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone


FEEDBACK_COLUMNS = (
    "source",
    "source_id",
    "title",
    "content",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_tier",
    "category",
    "created_at",
    "updated_at",
    "synced_at",
    "url",
    "tags",
    "metadata",
)


def iso_utc(moment: datetime) -> str:
    """The one text form of a timestamp in the store: sortable, second precision, UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    # isoformat is twice as fast as strftime, and always writes four year digits (strftime drops them before 1000).
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")[:19] + "Z"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- schema --------------------------------------------------------------------------------------------------------

_MIGRATION_1 = """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL CHECK (source <> ''),
            source_id TEXT NOT NULL CHECK (source_id <> ''),
            title TEXT,
            content TEXT NOT NULL DEFAULT '',
            customer_id TEXT,
            customer_email TEXT,
            customer_name TEXT,
            customer_tier TEXT,
            category TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            url TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            UNIQUE (source, source_id)
        );
        CREATE INDEX idx_feedback_created ON feedback (created_at);
        CREATE INDEX idx_feedback_source_created ON feedback (source, created_at);
        CREATE INDEX idx_feedback_category_created ON feedback (category, created_at);
        CREATE INDEX idx_feedback_tier_created ON feedback (customer_tier, created_at);
        CREATE INDEX idx_feedback_customer ON feedback (customer_email);

        CREATE TABLE feedback_tags (
            feedback_id INTEGER NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (feedback_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX idx_feedback_tags_tag ON feedback_tags (tag);

        CREATE TABLE sync_state (
            source TEXT NOT NULL,
            scope TEXT NOT NULL,
            cursor TEXT,
            status TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            started_at TEXT,
            updated_at TEXT,
            last_success_at TEXT,
            PRIMARY KEY (source, scope)
        );

        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            run_group TEXT NOT NULL,
            source TEXT NOT NULL,
            mode TEXT NOT NULL,
            range_start TEXT,
            range_end TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            skipped_stale INTEGER NOT NULL DEFAULT 0,
            errors TEXT,
            error_kind TEXT,
            duration_seconds REAL,
            requests INTEGER NOT NULL DEFAULT 0,
            wait_seconds REAL NOT NULL DEFAULT 0,
            vendor_total INTEGER,
            rate_limit TEXT
        );
        CREATE INDEX idx_sync_runs_source ON sync_runs (source, started_at);
"""


# Full-text index over the words a PM searches, kept in step by triggers (rebuilt for existing rows).
_MIGRATION_2 = """
        CREATE VIRTUAL TABLE feedback_fts USING fts5(
            title, content, customer_name, tags,
            content='feedback', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER feedback_fts_insert AFTER INSERT ON feedback BEGIN
            INSERT INTO feedback_fts (rowid, title, content, customer_name, tags)
            VALUES (new.id, new.title, new.content, new.customer_name, new.tags);
        END;
        CREATE TRIGGER feedback_fts_delete AFTER DELETE ON feedback BEGIN
            INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags)
            VALUES ('delete', old.id, old.title, old.content, old.customer_name, old.tags);
        END;
        CREATE TRIGGER feedback_fts_update AFTER UPDATE OF title, content, customer_name, tags ON feedback
        WHEN old.title IS NOT new.title OR old.content IS NOT new.content
          OR old.customer_name IS NOT new.customer_name OR old.tags IS NOT new.tags
        BEGIN
            INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags)
            VALUES ('delete', old.id, old.title, old.content, old.customer_name, old.tags);
            INSERT INTO feedback_fts (rowid, title, content, customer_name, tags)
            VALUES (new.id, new.title, new.content, new.customer_name, new.tags);
        END;
        INSERT INTO feedback_fts (feedback_fts) VALUES ('rebuild');
"""


# The full-text index is written by upsert_records, a page at a time, instead of by row triggers: FTS5 flushes its
# pending terms at every statement savepoint, and a trigger opens one per row, so trigger upkeep cost five times what
# the same rows cost in one set-based insert (benchmarks/ingest.py). Deletes stay on a trigger: they are rare.
_MIGRATION_3 = """
        DROP TRIGGER feedback_fts_insert;
        DROP TRIGGER feedback_fts_update;
"""


# Explore's charts group and count by these columns over a date range: with all of them in one index keyed by date,
# each chart reads the index alone instead of a wide row (content, metadata) per record.
# `writes` changes with every write to `feedback`, so data_version need not scan for the newest synced_at.
_MIGRATION_4 = """
        CREATE INDEX idx_feedback_facets
            ON feedback (created_at, source, category, customer_tier, customer_email, customer_id);
        CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO store_meta (key, value) VALUES ('writes', 0);
"""


# Provenance and manual overrides (issue 7). Why each record has its category and tier moves out of the metadata JSON
# into columns, so the Rules page counts them and rule re-application rewrites them in SQL. Overrides are keyed by
# (source, source_id) and keep the rules' decision underneath (see overrides.py); rules live in versions.
_MIGRATION_5 = """
        ALTER TABLE feedback ADD COLUMN category_reason TEXT;
        ALTER TABLE feedback ADD COLUMN tier_reason TEXT;
        UPDATE feedback SET category_reason = json_extract(metadata, '$.category_reason'),
                            tier_reason = json_extract(metadata, '$.tier_reason')
        WHERE json_valid(metadata);
        CREATE TABLE feedback_overrides (
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            field TEXT NOT NULL CHECK (field IN ('category', 'customer_tier')),
            value TEXT,
            reason TEXT NOT NULL,
            rule_value TEXT,
            rule_reason TEXT,
            batch INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (source, source_id, field)
        ) WITHOUT ROWID;
        CREATE INDEX idx_feedback_overrides_batch ON feedback_overrides (batch);
        CREATE TABLE override_batches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT,
            description TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE classification_rules (
            version INTEGER PRIMARY KEY,
            rules TEXT NOT NULL,
            created_at TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            applied_at TEXT
        );
        UPDATE store_meta SET value = value + 1 WHERE key = 'writes';
"""


# Each record's account (accounts.py: the rule, and why it is an indexed column) for the Demand view, as shipped: the text is frozen here so the schema needs
# nothing from accounts.py, and test_accounts checks that accounts.ACCOUNT_KEY_MIGRATION still builds the same text.
_MIGRATION_6 = (
    '\n'
    '        ALTER TABLE feedback ADD COLUMN customer_domain TEXT GENERATED ALWAYS AS (\n'
    "            CASE WHEN instr(customer_email, '@') > 0 THEN lower(trim(substr(customer_email, instr(cu"
    "stomer_email, '@') + 1), ' ')) END) VIRTUAL;\n"
    '        ALTER TABLE feedback ADD COLUMN account_key TEXT GENERATED ALWAYS AS\n'
    "            (CASE WHEN instr(customer_email, '@') > 0 AND customer_domain <> '' AND NOT (instr(custo"
    "mer_domain, ',') = 0 AND (instr(CASE substr(customer_domain, 1, 1) WHEN '1' THEN ',126.com,163.com,'"
    " WHEN 'a' THEN ',aim.com,alice.it,aliyun.com,aol.com,att.net,' WHEN 'b' THEN ',bigpond.com,bk.ru,bol"
    ".com.br,btinternet.com,' WHEN 'c' THEN ',charter.net,comcast.net,cox.net,' WHEN 'd' THEN ',daum.net,"
    "' WHEN 'e' THEN ',earthlink.net,email.com,' WHEN 'f' THEN ',fastmail.com,fastmail.fm,foxmail.com,fre"
    "e.fr,freenet.de,' WHEN 'g' THEN ',gmail.com,gmx.at,gmx.ch,gmx.com,gmx.de,gmx.net,googlemail.com,' WH"
    "EN 'h' THEN ',hanmail.net,hey.com,hotmail.com,hushmail.com,' WHEN 'i' THEN ',icloud.com,inbox.ru,int"
    "eria.pl,' WHEN 'l' THEN ',laposte.net,libero.it,list.ru,live.com,' WHEN 'm' THEN ',mac.com,mail.com,"
    "mail.ru,mailbox.org,me.com,msn.com,' WHEN 'n' THEN ',nate.com,naver.com,ntlworld.com,' WHEN 'o' THEN"
    " ',o2.pl,onet.pl,optusnet.com.au,orange.fr,outlook.com,' WHEN 'p' THEN ',passport.com,pm.me,posteo.d"
    "e,posteo.net,proton.me,protonmail.ch,protonmail.com,' WHEN 'q' THEN ',qq.com,' WHEN 'r' THEN ',rambl"
    "er.ru,rediffmail.com,rocketmail.com,rogers.com,' WHEN 's' THEN ',sbcglobal.net,seznam.cz,sfr.fr,shaw"
    ".ca,sina.cn,sina.com,sky.com,sohu.com,sympatico.ca,' WHEN 't' THEN ',t-online.de,talktalk.net,telus."
    "net,terra.com.br,tiscali.it,tuta.io,tutanota.com,' WHEN 'u' THEN ',uol.com.br,usa.com,' WHEN 'v' THE"
    "N ',verizon.net,virgilio.it,virginmedia.com,' WHEN 'w' THEN ',wanadoo.fr,web.de,wp.pl,' WHEN 'y' THE"
    "N ',ya.ru,yahoo.com,yandex.ru,yeah.net,ymail.com,' WHEN 'z' THEN ',zoho.com,zohomail.com,' ELSE '' E"
    "ND, ',' || customer_domain || ',') > 0 OR (instr(customer_domain, '.') > 0 AND instr(',gmx.,hotmail."
    ",live.,outlook.,windowslive.,yahoo.,yandex.,', ',' || substr(customer_domain, 1, instr(customer_doma"
    "in, '.')) || ',') > 0))) THEN customer_domain WHEN json_valid(metadata) AND CASE WHEN source = 'zend"
    "esk' THEN json_type(metadata, '$.organization_id') WHEN source = 'intercom' THEN json_type(metadata,"
    " '$.company_id') END IN ('integer', 'text') AND CASE WHEN source = 'zendesk' THEN CAST(json_extract("
    "metadata, '$.organization_id') AS TEXT) WHEN source = 'intercom' THEN CAST(json_extract(metadata, '$"
    ".company_id') AS TEXT) END <> '' THEN 'org:' || source || ':' || CASE WHEN source = 'zendesk' THEN C"
    "AST(json_extract(metadata, '$.organization_id') AS TEXT) WHEN source = 'intercom' THEN CAST(json_ext"
    "ract(metadata, '$.company_id') AS TEXT) END WHEN customer_email <> '' THEN 'person:' || lower(trim(c"
    "ustomer_email, ' ')) WHEN customer_id <> '' THEN 'person:' || source || ':' || customer_id ELSE 'ano"
    "nymous:' || source || ':' || source_id END) VIRTUAL;\n"
    '        CREATE INDEX idx_feedback_accounts ON feedback (created_at, account_key, customer_tier, cate'
    'gory, source);\n'
)

# Rule re-application (rules_store.py) reads these small indexes instead of every wide row: who decided each
# category and tier, and each ticket's vendor type. A plan over a million records then takes seconds, not tens.
# The source is the one sources.vendor_type_index_source() names, frozen as shipped (test_store_schema checks the
# two agree): the schema imports no registry.
_MIGRATION_7 = """
        CREATE INDEX IF NOT EXISTS idx_feedback_category_reason ON feedback (category_reason, category, source);
        CREATE INDEX IF NOT EXISTS idx_feedback_tier_reason ON feedback (tier_reason, customer_tier);
        CREATE INDEX IF NOT EXISTS idx_feedback_vendor_type ON feedback (json_extract(metadata, '$.type')) WHERE source = 'zendesk';
"""

# What the vendors removed (deleted or spam tickets, deleted conversations, deleted or disqualified responses): one
# tombstone per record, so a late webhook redelivery or a replayed older page never brings the text back. The record
# itself is deleted (its full-text entries by the delete trigger, its tags by cascade, its overrides with it).
_MIGRATION_8 = """
        CREATE TABLE feedback_removals (
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            removed_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (source, source_id)
        ) WITHOUT ROWID;
        ALTER TABLE sync_runs ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
"""

# Themes found in the text and sentiment (themes.py, sentiment.py). Sentiment is scored when a record's text is
# written; a record's theme is placed after it lands (NULL: not placed yet; 0: near no theme). The accounts index
# gains both columns, so Demand ranks themes and sentiment from the index alone.
_MIGRATION_9 = """
        ALTER TABLE feedback ADD COLUMN sentiment REAL;
        ALTER TABLE feedback ADD COLUMN sentiment_label TEXT;
        ALTER TABLE feedback ADD COLUMN theme_id INTEGER;
        ALTER TABLE feedback ADD COLUMN theme_score REAL;
        ALTER TABLE feedback ADD COLUMN dup_key TEXT;
        CREATE INDEX idx_feedback_sentiment ON feedback (sentiment_label, created_at);
        CREATE INDEX idx_feedback_theme ON feedback (theme_id, created_at);
        CREATE INDEX idx_feedback_dup ON feedback (dup_key) WHERE dup_key IS NOT NULL;
        DROP INDEX idx_feedback_accounts;
        CREATE INDEX idx_feedback_accounts
            ON feedback (created_at, account_key, customer_tier, category, source, theme_id, sentiment_label);
        CREATE TABLE themes (
            id INTEGER PRIMARY KEY,
            auto_name TEXT NOT NULL,
            name TEXT,
            terms TEXT NOT NULL DEFAULT '[]',
            centroid TEXT NOT NULL DEFAULT '{}',
            pinned INTEGER NOT NULL DEFAULT 0,
            hidden INTEGER NOT NULL DEFAULT 0,
            merged_into INTEGER,
            split_from INTEGER,
            retired INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE theme_model (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            terms TEXT NOT NULL,
            idf TEXT NOT NULL,
            built_at TEXT NOT NULL,
            records INTEGER NOT NULL,
            k INTEGER NOT NULL
        );
        CREATE TABLE theme_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            progress REAL NOT NULL DEFAULT 0,
            message TEXT,
            pid INTEGER,
            heartbeat REAL,
            records INTEGER,
            themes INTEGER,
            seconds REAL,
            peak_rss_mb REAL
        );
"""

# The tables other parts of the app created on first use before they were part of the schema. IF NOT EXISTS keeps
# each step safe on a store where that first use already happened.

# Manual account merges (accounts.py): alias -> account.
_MIGRATION_10 = """
        CREATE TABLE IF NOT EXISTS account_merges (
            alias TEXT PRIMARY KEY,
            account TEXT NOT NULL CHECK (account <> alias),
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
"""

# Saved searches shown as themes on the Demand view (insights.py).
_MIGRATION_11 = """
        CREATE TABLE IF NOT EXISTS saved_themes (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE CHECK (name <> ''),
            query TEXT NOT NULL CHECK (query <> ''),
            created_at TEXT NOT NULL
        );
"""

# The webhook receiver's event log, pending fetches, refusal counters and heartbeat (webhooks/events.py).
_MIGRATION_12 = """
        CREATE TABLE IF NOT EXISTS webhook_events (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL CHECK (source <> ''),
            event_id TEXT NOT NULL CHECK (event_id <> ''),
            event_type TEXT,
            verdict TEXT NOT NULL,
            record_id TEXT,
            fetch_queued INTEGER NOT NULL DEFAULT 0,
            detail TEXT,
            received_at TEXT NOT NULL,
            latency_ms REAL,
            deliveries INTEGER NOT NULL DEFAULT 1,
            last_delivery_at TEXT NOT NULL,
            UNIQUE (source, event_id)
        );
        CREATE INDEX IF NOT EXISTS idx_webhook_events_received ON webhook_events (received_at);
        CREATE TABLE IF NOT EXISTS webhook_fetches (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            object_id TEXT NOT NULL CHECK (object_id <> ''),
            params TEXT NOT NULL DEFAULT '{}',
            event_id TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            generation INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (source, kind, object_id)
        );
        CREATE INDEX IF NOT EXISTS idx_webhook_fetches_due ON webhook_fetches (status, next_attempt_at);
        CREATE TABLE IF NOT EXISTS webhook_counters (
            source TEXT NOT NULL,
            day TEXT NOT NULL,
            verdict TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, day, verdict)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS webhook_receiver (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            host TEXT,
            port INTEGER,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            stopped_at TEXT,
            sources TEXT NOT NULL DEFAULT '{}'
        );
"""

# Background sync jobs and the sync schedule (jobs.py).
_MIGRATION_13 = """
        CREATE TABLE IF NOT EXISTS sync_jobs (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL,
            status TEXT NOT NULL,
            sources TEXT NOT NULL,
            spec TEXT NOT NULL,
            pid INTEGER,
            created_at TEXT NOT NULL,
            started_at TEXT,
            heartbeat_at TEXT,
            finished_at TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            run_group TEXT,
            progress TEXT NOT NULL DEFAULT '{}',
            results TEXT,
            message TEXT,
            log_path TEXT
        );
        CREATE INDEX IF NOT EXISTS idx_sync_jobs_status ON sync_jobs (status);
        CREATE TABLE IF NOT EXISTS sync_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Per-day counts for Explore's charts (queries.py reads them when the filters allow): records per day, source, tier,
# category and sentiment (about 100,000 rows at most for a year: no theme, which would make a row of nearly every
# record). A missing tier or sentiment is '', so each combination has one key. Triggers keep the counts in the transaction of every change of a record, whichever code makes it (the upsert,
# removals, overrides, rule re-application, theme assignment): an insert counts the record, a delete uncounts it, and
# an update that changes one of the keys moves it. Counts that fall to zero stay as rows until the next rebuild;
# readers skip them.
_MIGRATION_14 = """
        CREATE TABLE feedback_daily (
            day TEXT NOT NULL,
            source TEXT NOT NULL,
            tier TEXT NOT NULL,
            category TEXT NOT NULL,
            sentiment TEXT NOT NULL,
            records INTEGER NOT NULL,
            PRIMARY KEY (day, source, tier, category, sentiment)
        ) WITHOUT ROWID;
        INSERT INTO feedback_daily (day, source, tier, category, sentiment, records)
            SELECT substr(created_at, 1, 10), source, ifnull(customer_tier, ''), category, ifnull(sentiment_label, ''),
                   COUNT(*)
            FROM feedback GROUP BY 1, 2, 3, 4, 5;
        CREATE TRIGGER feedback_daily_insert AFTER INSERT ON feedback BEGIN
            INSERT INTO feedback_daily (day, source, tier, category, sentiment, records)
            VALUES (substr(new.created_at, 1, 10), new.source, ifnull(new.customer_tier, ''), new.category,
                    ifnull(new.sentiment_label, ''), 1)
            ON CONFLICT DO UPDATE SET records = records + 1;
        END;
        CREATE TRIGGER feedback_daily_delete AFTER DELETE ON feedback BEGIN
            UPDATE feedback_daily SET records = records - 1
            WHERE day = substr(old.created_at, 1, 10) AND source = old.source AND tier = ifnull(old.customer_tier, '')
              AND category = old.category AND sentiment = ifnull(old.sentiment_label, '');
        END;
        CREATE TRIGGER feedback_daily_update
        AFTER UPDATE OF created_at, source, customer_tier, category, sentiment_label ON feedback
        WHEN substr(old.created_at, 1, 10) IS NOT substr(new.created_at, 1, 10) OR old.source IS NOT new.source
          OR old.customer_tier IS NOT new.customer_tier OR old.category IS NOT new.category
          OR old.sentiment_label IS NOT new.sentiment_label
        BEGIN
            UPDATE feedback_daily SET records = records - 1
            WHERE day = substr(old.created_at, 1, 10) AND source = old.source AND tier = ifnull(old.customer_tier, '')
              AND category = old.category AND sentiment = ifnull(old.sentiment_label, '');
            INSERT INTO feedback_daily (day, source, tier, category, sentiment, records)
            VALUES (substr(new.created_at, 1, 10), new.source, ifnull(new.customer_tier, ''), new.category,
                    ifnull(new.sentiment_label, ''), 1)
            ON CONFLICT DO UPDATE SET records = records + 1;
        END;
"""

# Intercom contacts kept between syncs, so a re-sync asks only for the ones that changed
# (sources/intercom/contacts.py): `updated_at` is Intercom's, `fetched_at` when we asked (unix seconds).
_MIGRATION_15_INTERCOM_CONTACTS = """
        CREATE TABLE IF NOT EXISTS intercom_contacts (
            contact_id TEXT PRIMARY KEY,
            contact TEXT NOT NULL,
            updated_at INTEGER,
            fetched_at INTEGER NOT NULL
        ) WITHOUT ROWID;
"""

# Per-day tag counts for Explore's tags chart (queries.top_tags reads them when the filters allow, as the charts read
# feedback_daily): records per day, source, tier, category and tag. No sentiment, which would multiply the rows (about
# 800,000 for a year of a million records): with a sentiment filter, top_tags reads the records. The triggers read the
# record's own `tags` JSON, written by the same statement as the rest of the row, so the counts move with it in every
# write (feedback_tags is written later in the upsert, and its rows go by cascade, after the record is gone). A tag
# listed twice counts once, as in feedback_tags; a value that is not a JSON array, or an element that is not a string,
# counts no tag. Records without tags ('[]') skip the triggers. Counts that fall to zero stay as rows. Cost, measured on
# generated records: about 7 µs (4 %) more per new record, and about 16 µs more per record whose category or tier a
# rule moves.
_MIGRATION_16_DAILY_TAGS = """
        CREATE TABLE feedback_daily_tags (
            day TEXT NOT NULL,
            source TEXT NOT NULL,
            tier TEXT NOT NULL,
            category TEXT NOT NULL,
            tag TEXT NOT NULL,
            records INTEGER NOT NULL,
            PRIMARY KEY (day, source, tier, category, tag)
        ) WITHOUT ROWID;
        INSERT INTO feedback_daily_tags (day, source, tier, category, tag, records)
            SELECT day, source, tier, category, tag, COUNT(*) FROM (
                SELECT DISTINCT f.id, substr(f.created_at, 1, 10) AS day, f.source, ifnull(f.customer_tier, '') AS tier,
                       f.category, t.value AS tag
                FROM feedback AS f, json_each(CASE WHEN NOT json_valid(f.tags) THEN '[]'
                                                   WHEN json_type(f.tags) = 'array' THEN f.tags ELSE '[]' END) AS t
                WHERE f.tags <> '[]' AND t.type = 'text'
            ) GROUP BY 1, 2, 3, 4, 5;
        CREATE TRIGGER feedback_daily_tags_insert AFTER INSERT ON feedback WHEN new.tags <> '[]' BEGIN
            INSERT INTO feedback_daily_tags (day, source, tier, category, tag, records)
            SELECT DISTINCT substr(new.created_at, 1, 10), new.source, ifnull(new.customer_tier, ''), new.category,
                   value, 1
            FROM json_each(CASE WHEN NOT json_valid(new.tags) THEN '[]'
                                WHEN json_type(new.tags) = 'array' THEN new.tags ELSE '[]' END)
            WHERE type = 'text'
            ON CONFLICT DO UPDATE SET records = records + 1;
        END;
        CREATE TRIGGER feedback_daily_tags_delete AFTER DELETE ON feedback WHEN old.tags <> '[]' BEGIN
            UPDATE feedback_daily_tags SET records = records - 1
            WHERE day = substr(old.created_at, 1, 10) AND source = old.source AND tier = ifnull(old.customer_tier, '')
              AND category = old.category
              AND tag IN (SELECT value FROM json_each(CASE WHEN NOT json_valid(old.tags) THEN '[]'
                                                           WHEN json_type(old.tags) = 'array' THEN old.tags ELSE '[]' END)
                          WHERE type = 'text');
        END;
        CREATE TRIGGER feedback_daily_tags_update AFTER UPDATE OF created_at, source, customer_tier, category, tags ON feedback
        WHEN old.tags IS NOT new.tags
          OR (new.tags <> '[]' AND (substr(old.created_at, 1, 10) IS NOT substr(new.created_at, 1, 10)
                                    OR old.source IS NOT new.source OR old.customer_tier IS NOT new.customer_tier
                                    OR old.category IS NOT new.category))
        BEGIN
            UPDATE feedback_daily_tags SET records = records - 1
            WHERE day = substr(old.created_at, 1, 10) AND source = old.source AND tier = ifnull(old.customer_tier, '')
              AND category = old.category
              AND tag IN (SELECT value FROM json_each(CASE WHEN NOT json_valid(old.tags) THEN '[]'
                                                           WHEN json_type(old.tags) = 'array' THEN old.tags ELSE '[]' END)
                          WHERE type = 'text');
            INSERT INTO feedback_daily_tags (day, source, tier, category, tag, records)
            SELECT DISTINCT substr(new.created_at, 1, 10), new.source, ifnull(new.customer_tier, ''), new.category,
                   value, 1
            FROM json_each(CASE WHEN NOT json_valid(new.tags) THEN '[]'
                                WHEN json_type(new.tags) = 'array' THEN new.tags ELSE '[]' END)
            WHERE type = 'text'
            ON CONFLICT DO UPDATE SET records = records + 1;
        END;
"""

# Each migration is one script; it runs with the version bump inside one transaction.
MIGRATIONS: tuple[str, ...] = (
    _MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4, _MIGRATION_5, _MIGRATION_6, _MIGRATION_7, _MIGRATION_8,
    _MIGRATION_9, _MIGRATION_10, _MIGRATION_11, _MIGRATION_12, _MIGRATION_13,
    _MIGRATION_14, _MIGRATION_15_INTERCOM_CONTACTS, _MIGRATION_16_DAILY_TAGS,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (a trigger's body stays whole)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete statement in a migration: {pending.strip()[:80]}")

