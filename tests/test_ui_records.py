"""Explore's KPIs and table: paging, safe links, store rows shaped for display, record details."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from feedback_sources.ui.records import (
    Kpi,
    kpi_row,
    page_count,
    page_offset,
    record_details,
    safe_link,
    table_rows,
)

# -- KPIs ------------------------------------------------------------------------------------------------------------


def test_kpis_with_a_previous_period() -> None:
    kpis = {"records": 150, "customers": 40, "enterprise_share": 0.25, "previous_records": 100}
    assert kpi_row(kpis) == [
        Kpi("Records", "150", None, "Pieces of feedback that match the filters."),
        Kpi("Customers", "40", None, "Different people who sent that feedback."),
        Kpi("Enterprise", "25%", None, "How much of that feedback comes from customers on the Enterprise plan."),
        Kpi("Change", "+50%", "+50 records",
            "Compared with the same number of days just before this period, which had 100 records."),
    ]


def test_kpis_without_or_with_an_empty_previous_period() -> None:
    base = {"records": 3, "customers": 2, "enterprise_share": 0.0}
    assert kpi_row({**base, "previous_records": None})[3] == Kpi(
        "Change", "n/a", None, "Pick a period to compare it with the same number of days just before."
    )
    assert kpi_row({**base, "previous_records": 0})[3] == Kpi(
        "Change", "new", "+3", "There was no feedback in the same number of days just before this period."
    )


def test_kpi_labels_are_short_words_without_formulas() -> None:
    kpis = kpi_row({"records": 1, "customers": 1, "enterprise_share": 1.0, "previous_records": 1})
    assert all(len(k.label) <= 12 for k in kpis)
    assert not [k for k in kpis if any(ch in k.label + k.help for ch in "=×÷/()`_")]


# -- table ----------------------------------------------------------------------------------------------------------


def test_paging_arithmetic() -> None:
    assert [page_count(n, 50) for n in (0, 1, 50, 51, 1_000_000)] == [1, 1, 1, 2, 20_000]
    assert [page_offset(p, 50) for p in (0, 1, 2, 20_000)] == [0, 0, 50, 999_950]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://acme.zendesk.com/agent/tickets/1", "https://acme.zendesk.com/agent/tickets/1"),
        (" http://127.0.0.1:8765/x ", "http://127.0.0.1:8765/x"),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("//evil.example/x", None),
        ("https://", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_safe_link_allows_only_http_urls(url: object, expected: str | None) -> None:
    assert safe_link(url) == expected


def test_table_rows_shape_store_rows() -> None:
    row = {
        "source": "intercom", "source_id": "c3", "title": None, "customer_name": None, "content": "Hi,\n  the export\tbreaks",
        "customer_email": "a@b.example", "customer_tier": None, "category": "praise",
        "created_at": "2026-03-01T10:00:00Z", "tags": '["x", "<y>"]', "url": "javascript:alert(1)",
    }
    assert table_rows([row]) == [
        {
            "created_at": datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc),
            "source": "intercom",
            "source_id": "c3",
            "source_name": "Intercom",
            "title": "Hi, the export breaks",
            "category_label": "Praise",
            "tier_label": "Unknown",
            "customer": "a@b.example",
            "tier": "unknown",
            "category": "praise",
            "tags": ["x", "<y>"],
            "link": None,
        }
    ]


def test_demo_rows_and_details_carry_no_link() -> None:
    row = {"source": "zendesk", "source_id": "1", "created_at": "2026-03-01T10:00:00Z",
           "url": "https://demo.zendesk.com/agent/tickets/1"}
    assert table_rows([row])[0]["link"] == "https://demo.zendesk.com/agent/tickets/1"
    assert table_rows([row], links=False)[0]["link"] is None
    assert dict(record_details(row, links=False))["Link"] == ""


def test_record_details_are_plain_strings(madrid: None) -> None:
    record = {
        "source": "zendesk", "source_id": "1", "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-02T10:00:00Z",
        "customer_name": "Ann", "customer_email": None, "customer_id": "7", "customer_tier": "enterprise",
        "category": "bug_report", "tags": ["a", "b"], "url": "https://acme.zendesk.com/agent/tickets/1",
    }
    assert record_details(record) == [
        ("Source", "Zendesk"), ("ID", "1"), ("Created", "1 Mar 2026, 11:00"), ("Updated", "2 Mar 2026, 11:00"),
        ("Customer", "Ann"), ("Email", ""), ("Customer ID", "7"), ("Tier", "Enterprise"), ("Category", "Bug report"),
        ("Tags", "a, b"), ("Link", "https://acme.zendesk.com/agent/tickets/1"),
    ]
