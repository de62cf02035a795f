"""Explore's KPIs: the whole store's figures (read from the per-day counts and the email index) equal the same
figures counted record by record, whoever the customers are."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.store import Filters, Store
from feedback_sources.store.queries import CUSTOMER_KEY
from tests.conftest import make_record


def counted_one_by_one(store: Store) -> tuple[int, int, float]:
    records, customers, enterprise = store.conn.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT {CUSTOMER_KEY}), SUM(customer_tier = 'enterprise') FROM feedback").fetchone()
    return records, customers, (enterprise or 0) / records if records else 0.0


def figures(kpis: dict) -> tuple[int, int, float]:
    return kpis["records"], kpis["customers"], kpis["enterprise_share"]


def test_every_kind_of_customer_counts_once() -> None:
    with Store() as store:
        store.upsert_records([
            make_record("1", customer_email="ana@acme.example", customer_id="9"),
            make_record("2", customer_email="ana@acme.example", customer_id="10"),  # the same person twice
            make_record("3", customer_email="Ana@acme.example"),  # another spelling is another key, as before
            make_record("4", customer_email=None, customer_id="7"),
            make_record("5", customer_email=None, customer_id="7", source="intercom"),  # another source's 7
            make_record("6", customer_email=None, customer_id="7"),
            make_record("7", customer_email="zendesk:7"),  # an "email" that reads like the key of record 4
            make_record("8", customer_email=None, customer_id=None, customer_tier=None),  # nobody: not a customer
        ])
        assert figures(store.kpis()) == counted_one_by_one(store) == (8, 4, 7 / 8)
        assert store.kpis()["previous_records"] is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a@x.example", "b@x.example", "zendesk:1", None]),
                          st.sampled_from(["1", "2", None]), st.sampled_from(["zendesk", "intercom"]),
                          st.sampled_from(["enterprise", "free", None])), max_size=30))
def test_the_whole_store_equals_a_count_of_every_record(people: list) -> None:
    with Store() as store:
        store.upsert_records([
            make_record(str(n), customer_email=email, customer_id=customer, source=source, customer_tier=tier)
            for n, (email, customer, source, tier) in enumerate(people)
        ])
        assert figures(store.kpis()) == counted_one_by_one(store)
        # A filtered view takes the general path; it agrees on the same records.
        everything = Filters(start=date(2000, 1, 1))
        assert figures(store.kpis(everything)) == counted_one_by_one(store)
