"""Account resolution: the rule (domain unless free mail, then the vendor's organization, then the person), the same
rule as an indexed SQL column, the migration that adds it, and manual merges."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources import accounts
from feedback_sources.accounts import (
    ACCOUNT_KEY_MIGRATION,
    Merge,
    MergeError,
    account_key,
    account_key_sql,
    account_label,
    email_domain,
    is_free_mail,
)
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import MIGRATIONS, SCHEMA_VERSION, Store

CREATED = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)

# (source, source_id, email, customer id, metadata) → account
CASES: list[tuple[tuple[str, str, str | None, str | None, dict[str, Any]], str]] = [
    (("zendesk", "1", "ann@acme.com", "11", {}), "acme.com"),
    (("intercom", "2", "Bob@ACME.Com ", "c2", {}), "acme.com"),
    (("surveymonkey", "3", "carl@eu.acme.com", None, {}), "eu.acme.com"),
    (("zendesk", "4", "dana@gmail.com", "44", {"organization_id": "42"}), "org:zendesk:42"),
    (("zendesk", "5", "eve@gmail.com", "55", {"organization_id": 42}), "org:zendesk:42"),
    (("zendesk", "6", "Eve@GMail.com", "66", {}), "person:eve@gmail.com"),
    (("intercom", "7", "fay@yahoo.co.uk", "c7", {"company_id": "co_9"}), "org:intercom:co_9"),
    (("intercom", "8", "gus@gmx.net", "c8", {"organization_id": "42"}), "person:gus@gmx.net"),  # not Intercom's field
    (("surveymonkey", "9", "hal@hotmail.fr", None, {"organization_id": "42"}), "person:hal@hotmail.fr"),
    (("zendesk", "10", None, "1010", {"organization_id": True}), "person:zendesk:1010"),  # a flag is not an id
    (("zendesk", "11", None, "1111", {"organization_id": ""}), "person:zendesk:1111"),
    (("zendesk", "12", "not-an-address", "1212", {}), "person:not-an-address"),
    (("zendesk", "13", "ivy@", "1313", {"organization_id": "7"}), "org:zendesk:7"),
    (("surveymonkey", "14", None, None, {}), "anonymous:surveymonkey:14"),
    (("surveymonkey", "15", "", "", {}), "anonymous:surveymonkey:15"),
    (("intercom", "16", "jo@livechat.com", "c16", {}), "livechat.com"),  # "live." is a family, livechat.com is not
    (("intercom", "17", "kim@web.de", "c17", {}), "person:kim@web.de"),
    (("intercom", "18", "lee@proton.me", "c18", {}), "person:lee@proton.me"),
    (("zendesk", "19", "max@a,gmail.com", "1919", {}), "a,gmail.com"),  # a comma never makes free mail
]


def record(source: str, source_id: str, email: str | None, customer_id: str | None,
           metadata: dict[str, Any]) -> NormalizedRecord:
    return NormalizedRecord(source=source, source_id=source_id, title="t", content="c", customer_email=email,
                            customer_id=customer_id, created_at=CREATED, metadata=metadata)


def test_the_rule_in_python() -> None:
    assert [account_key(*case) for case, _ in CASES] == [expected for _, expected in CASES]


def test_the_indexed_column_and_the_sql_expression_agree_with_the_python_rule(fresh_store: Store) -> None:
    fresh_store.upsert_records([record(*case) for case, _ in CASES])
    stored = fresh_store.conn.execute(
        f"SELECT source_id, account_key, {account_key_sql('f')} FROM feedback f ORDER BY CAST(source_id AS INTEGER)"
    ).fetchall()
    assert stored == [(case[1], expected, expected) for case, expected in CASES]


def test_a_period_is_read_from_the_accounts_index(fresh_store: Store) -> None:
    plan = fresh_store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT account_key, COUNT(*) FROM feedback INDEXED BY idx_feedback_accounts "
        "WHERE created_at >= '2026-01-01' AND created_at < '2026-04-01' GROUP BY 1"
    ).fetchall()
    assert [row[-1] for row in plan if "feedback" in row[-1]] == [
        "SEARCH feedback USING INDEX idx_feedback_accounts (created_at>? AND created_at<?)"]


def test_free_mail() -> None:
    assert [is_free_mail(d) for d in ("gmail.com", "gmx.ch", "yahoo.fr", "outlook.de", "acme.com", "gmxx.com",
                                      "mail.ru", "163.com", "qq.com", "googlemail.com", "icloud.com", "me.com")] == [
        True, True, True, True, False, False, True, True, True, True, True, True]
    assert [email_domain(e) for e in ("a@B.Com", "nobody", None, "x@", " y@z.io ")] == ["b.com", None, None, None,
                                                                                      "z.io"]


_local = st.text(alphabet="abcXYZ.-_+0", min_size=0, max_size=6)
_domain = st.one_of(
    st.sampled_from(["gmail.com", "GMX.de", "yahoo.co.uk", "acme.com", "Acme.COM", "live.fr", "livechat.com",
                     "hotmail", "", "web.de", "a,b.com", "ümlaut.de", " spaced.io "]),
    st.text(alphabet="abcGM.,-", min_size=0, max_size=10),
)
_emails = st.one_of(st.none(), st.just(""), st.builds(lambda a, b: f"{a}@{b}", _local, _domain), _local)
_org = st.one_of(st.none(), st.just(""), st.booleans(), st.integers(-5, 10**6), st.text(alphabet="ab1 ", max_size=4),
                 st.floats(allow_nan=False, allow_infinity=False, width=32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(["zendesk", "intercom", "surveymonkey"]), email=_emails,
       customer_id=st.one_of(st.none(), st.just(""), st.text(alphabet="c01", min_size=1, max_size=3)),
       org_field=st.sampled_from(["organization_id", "company_id"]), org=_org)
def test_sql_and_python_agree_on_any_record(source: str, email: str | None, customer_id: str | None,
                                            org_field: str, org: Any) -> None:
    metadata = {org_field: org} if org is not None else {}
    with Store(":memory:") as store:
        store.upsert_records([record(source, "r1", email, customer_id, metadata)])
        row = store.get_record(source, "r1")
        assert row is not None
        column = store.conn.execute("SELECT account_key FROM feedback").fetchone()[0]
    assert column == account_key(source, "r1", row["customer_email"], row["customer_id"], row["metadata"])


# -- the migration ----------------------------------------------------------------------------------------------------

# The free-mail list is part of the schema: a changed list needs a new migration, never an edited one.
SHIPPED_MIGRATION_SHA256 = "18d3b7b434adec3522dfe8daf651627b75400ed4590e11d00cf0044f87f36e85"


def test_the_shipped_migration_is_unchanged() -> None:
    assert ACCOUNT_KEY_MIGRATION in MIGRATIONS
    assert hashlib.sha256(ACCOUNT_KEY_MIGRATION.encode()).hexdigest() == SHIPPED_MIGRATION_SHA256


def test_an_existing_store_gains_the_account_of_every_record(tmp_path: Path) -> None:
    path = tmp_path / "before.db"
    index = MIGRATIONS.index(ACCOUNT_KEY_MIGRATION)
    with Store(path, migrate=False) as store:
        for number in range(index):
            store.conn.executescript(f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
        store.conn.execute(
            "INSERT INTO feedback (source, source_id, content, customer_email, category, created_at, updated_at, "
            "synced_at, metadata) VALUES ('zendesk', '1', '', 'ann@gmail.com', 'other', '2026-01-01T00:00:00Z', "
            "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '{\"organization_id\": \"77\"}')"
        )
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.conn.execute("SELECT account_key, customer_domain FROM feedback").fetchall() == [
            ("org:zendesk:77", "gmail.com")]
        assert store.integrity_check() == "ok"


# -- merges -----------------------------------------------------------------------------------------------------------


def test_merges_resolve_in_one_step_and_can_be_undone(fresh_store: Store) -> None:
    assert accounts.merges(fresh_store) == []
    first = accounts.merge(fresh_store, " org:zendesk:42 ", "acme.io")
    assert (first.alias, first.account) == ("org:zendesk:42", "acme.io")
    accounts.merge(fresh_store, "acme.io", "acme.com")  # earlier merges into acme.io follow it
    accounts.merge(fresh_store, "person:eve@gmail.com", "acme.io")  # a merged-away target resolves to where it went
    assert [(m.alias, m.account) for m in accounts.merges(fresh_store)] == [
        ("acme.io", "acme.com"), ("org:zendesk:42", "acme.com"), ("person:eve@gmail.com", "acme.com")]
    with pytest.raises(MergeError, match="already merged into"):
        accounts.merge(fresh_store, "acme.com", "acme.io")
    with pytest.raises(MergeError, match="Name both"):
        accounts.merge(fresh_store, "  ", "acme.com")
    with pytest.raises(MergeError, match="into itself"):
        accounts.merge(fresh_store, "acme.com", " acme.com")
    assert accounts.unmerge(fresh_store, "acme.io") is True
    assert accounts.unmerge(fresh_store, "acme.io") is False
    assert all(isinstance(m, Merge) for m in accounts.merges(fresh_store))
    assert [(m.alias, m.account) for m in accounts.merges(fresh_store)] == [
        ("org:zendesk:42", "acme.com"), ("person:eve@gmail.com", "acme.com")]


def test_labels() -> None:
    assert [account_label(k) for k in ("acme.com", "org:zendesk:42", "person:eve@gmail.com", "person:zendesk:9",
                                       "anonymous:surveymonkey:3")] == [
        "acme.com", "zendesk organization 42", "eve@gmail.com", "zendesk customer 9", "anonymous respondent"]
    assert account_label("org:zendesk:42", "Acme Inc") == "Acme Inc (zendesk organization 42)"


def test_organization_names_come_from_the_records(fresh_store: Store) -> None:
    fresh_store.upsert_records([
        record("zendesk", "1", "a@gmail.com", "1", {"organization_id": "42", "organization_name": "Acme Inc"}),
        record("zendesk", "2", "b@gmail.com", "2", {"organization_id": "43"}),
    ])
    assert accounts.organization_names(fresh_store, ["org:zendesk:42", "org:zendesk:43", "acme.com"]) == {
        "org:zendesk:42": "Acme Inc"}


def test_organizations_whose_colleagues_share_a_domain_are_suggested_merges(fresh_store: Store) -> None:
    people = [("a@acme.com", "42"), ("b@acme.com", "42"), ("c@gmail.com", "42"), ("d@other.com", "42"),
              ("e@gmail.com", "43"), ("f@x.com", "44"), ("g@y.com", "44"), ("h@gmail.com", "44"), ("i@z.com", "45")]
    fresh_store.upsert_records([record("zendesk", str(n), email, str(n), {"organization_id": org})
                                for n, (email, org) in enumerate(people)])
    assert accounts.suggested_merges(fresh_store) == [
        accounts.Suggestion("org:zendesk:42", "acme.com", 2, 3), accounts.Suggestion("org:zendesk:44", "x.com", 1, 2)]
    assert accounts.suggested_merges(fresh_store, min_share=0.6) == [
        accounts.Suggestion("org:zendesk:42", "acme.com", 2, 3)]
    accounts.merge(fresh_store, "org:zendesk:42", "acme.com")
    assert [s.alias for s in accounts.suggested_merges(fresh_store)] == ["org:zendesk:44"]
