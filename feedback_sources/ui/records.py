"""Explore's numbers and table: the KPI row, paging, store rows shaped for display and one record's details.

Only http(s) links reach a clickable cell, and the demo workspace shows none (its vendor hosts do not exist).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..store import UNKNOWN_TIER
from .labels import human_label, source_label
from .text import parse_timestamp, readable_datetime, snippet

PAGE_SIZE = 50


# -- KPIs ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None = None
    help: str = ""


def kpi_row(kpis: Mapping[str, Any]) -> list[Kpi]:
    """The four numbers on top of Explore; short labels (they must not be cut at 1280 px), the meaning in the help."""
    records = int(kpis["records"])
    previous = kpis.get("previous_records")
    if previous is None:
        change = Kpi("Change", "n/a", None, "Pick a period to compare it with the same number of days just before.")
    elif previous == 0:
        change = Kpi("Change", "new" if records else "0", f"+{records:,}" if records else None,
                     "There was no feedback in the same number of days just before this period.")
    else:
        percent = (records - previous) / previous * 100
        change = Kpi("Change", f"{percent:+.0f}%", f"{records - previous:+,} records",
                     f"Compared with the same number of days just before this period, which had {previous:,} "
                     "records.")
    return [
        Kpi("Records", f"{records:,}", help="Pieces of feedback that match the filters."),
        Kpi("Customers", f"{int(kpis['customers']):,}", help="Different people who sent that feedback."),
        Kpi("Enterprise", f"{float(kpis['enterprise_share']) * 100:.0f}%",
            help="How much of that feedback comes from customers on the Enterprise plan."),
        change,
    ]


# -- table paging and rows -------------------------------------------------------------------------------------------


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / page_size))


def page_offset(page: int, page_size: int = PAGE_SIZE) -> int:
    return (max(page, 1) - 1) * page_size


def safe_link(url: Any) -> str | None:
    """Only http(s) links reach a clickable cell: a javascript: or data: URL from a payload is dropped."""
    if not isinstance(url, str) or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def parse_tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        import json

        try:
            loaded = json.loads(value)
        except ValueError:
            return []
        return [str(v) for v in loaded] if isinstance(loaded, list) else []
    return []


def table_rows(rows: Iterable[Mapping[str, Any]], links: bool = True) -> list[dict[str, Any]]:
    """Store rows shaped for the Explore table: local dates, product names and labels, safe links.

    `source` and `source_id` stay the raw keys (they open the record); the labelled columns are for display.
    `links=False` (the demo workspace) drops the links: demo records point at vendor hosts that do not exist.
    """
    shaped = []
    for row in rows:
        created = parse_timestamp(row.get("created_at"))
        source = str(row.get("source") or "")
        tier = row.get("customer_tier") or UNKNOWN_TIER
        category = str(row.get("category") or "")
        shaped.append(
            {
                "created_at": created.astimezone() if created else None,
                "source": source,
                "source_id": row.get("source_id"),
                "source_name": source_label(source),
                "title": row.get("title") or snippet(row.get("content")),
                "category_label": human_label(category),
                "tier_label": human_label(tier),
                "customer": row.get("customer_name") or row.get("customer_email") or "",
                "tier": tier,
                "category": category,
                "tags": parse_tags(row.get("tags")),
                "link": safe_link(row.get("url")) if links else None,
            }
        )
    return shaped


def record_details(record: Mapping[str, Any], links: bool = True) -> list[tuple[str, str]]:
    """One record as (field, text) pairs for a plain-text detail view; metadata is shown separately as JSON."""
    fields = (
        ("Source", source_label(str(record.get("source") or ""))),
        ("ID", record.get("source_id")),
        ("Created", readable_datetime(parse_timestamp(record.get("created_at")))),
        ("Updated", readable_datetime(parse_timestamp(record.get("updated_at")))),
        ("Customer", record.get("customer_name")),
        ("Email", record.get("customer_email")),
        ("Customer ID", record.get("customer_id")),
        ("Tier", human_label(str(record.get("customer_tier") or UNKNOWN_TIER))),
        ("Category", human_label(str(record.get("category") or ""))),
        ("Tags", ", ".join(parse_tags(record.get("tags")))),
        ("Link", (safe_link(record.get("url")) or "") if links else ""),
    )
    metadata = record.get("metadata")
    redacted = metadata.get("redacted_parts") if isinstance(metadata, Mapping) else None
    if isinstance(redacted, list) and redacted:
        # Messages the vendor redacted: their text is gone from the record, their count is not.
        fields += (("Redacted messages", len(redacted)),)
    return [(label, "" if value is None else str(value)) for label, value in fields]
