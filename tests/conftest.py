from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store

VENDOR_ENV = (
    "ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN", "ZENDESK_BASE_URL", "ZENDESK_WEBHOOK_SECRET",
    "INTERCOM_ACCESS_TOKEN", "INTERCOM_REGION", "INTERCOM_BASE_URL", "INTERCOM_CLIENT_SECRET",
    "SURVEYMONKEY_ACCESS_TOKEN", "SURVEYMONKEY_BASE_URL", "SURVEYMONKEY_CLIENT_ID", "SURVEYMONKEY_CLIENT_SECRET",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test reads the developer's credentials, keyring or databases."""
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("FEEDBACK_DB", str(data / "feedback.db"))
    monkeypatch.setenv("FEEDBACK_DEMO_DB", str(data / "demo.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(data / "cache"))  # the demo spreadsheet is written there
    try:
        import keyring

        from feedback_sources.credentials import InMemoryKeyring
    except ImportError:
        yield
        return
    previous = keyring.get_keyring()
    keyring.set_keyring(InMemoryKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def fresh_store() -> Store:
    store = Store(":memory:")
    yield store
    store.close()


def make_record(source_id: str = "1", **overrides: Any) -> NormalizedRecord:
    fields: dict[str, Any] = {
        "source": "zendesk",
        "source_id": source_id,
        "title": f"Title {source_id}",
        "content": f"Content of {source_id}",
        "customer_id": "c1",
        "customer_email": "ana@acme.example",
        "customer_name": "Ana",
        "customer_tier": "enterprise",
        "category": "bug_report",
        "created_at": datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc),
        "metadata": {"updated_at": "2026-03-01T12:00:00+00:00", "tags": ["bug"], "url": f"https://x.example/{source_id}"},
    }
    fields.update(overrides)
    return NormalizedRecord(**fields)


# Shared by tests/test_ui_text.py and tests/test_ui_records.py, which both show dates in local time.
@pytest.fixture
def madrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is Madrid (UTC+1 in March): dates are shown in it."""
    import time

    monkeypatch.setenv("TZ", "Europe/Madrid")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
