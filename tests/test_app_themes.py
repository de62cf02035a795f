"""Themes page (AppTest): finding themes in the background, the ranked themes with quotes and sentiment, the PM's
edits, and feedback text shown inert."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from app_fixtures import (
    XSS_CONTENT,
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    markdown_bodies,
    run_page,
    seed,
    texts,
)

from benchmarks.theme_quality import items, records
from feedback_sources import themes
from feedback_sources.models import NormalizedRecord, Tier
from feedback_sources.store import Store
from tests.helpers import wait_for

THEMES = "app_pages/themes.py"


def recent_records() -> list[NormalizedRecord]:
    """The labelled feedback, spread over the last twenty days, and one hostile message among the CSV timeouts."""
    now = datetime.now(timezone.utc)
    dated = [r.model_copy(update={"created_at": now - timedelta(hours=1 + i)}) for i, r in enumerate(records(items()))]
    hostile = NormalizedRecord(source="intercom", source_id="x1", title="CSV export times out",
                               content=f"CSV export times out on big reports {XSS_CONTENT}",
                               created_at=now - timedelta(hours=2))
    return [*dated, hostile]


def test_themes_are_found_in_the_background_then_ranked_with_quotes(app_env: AppEnv) -> None:
    seed(app_env.demo_db, recent_records())
    at = run_page(app_env, THEMES, mode="demo")
    assert any("No themes yet" in body for body in markdown_bodies(at))
    find = next(b for b in at.button if b.label == "Find themes")
    find.click().run()
    assert not at.exception

    def finished() -> bool:
        with Store(app_env.demo_db) as store:
            run = themes.latest_run(store)
        return run is not None and run["status"] == "complete"

    wait_for(finished, timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table.columns) == ["Theme", "Accounts", "Records", "Weighted demand", "Change", "Negative"]
    assert len(table) >= 8 and table["Records"].sum() >= 300
    quotes = [t for t in texts(at) if t.startswith("“")]
    assert len(quotes) >= 9  # three per theme card
    # The hostile message is quoted as plain text only: it never reaches markdown.
    assert not any("onerror" in body for body in markdown_bodies(at))


def test_a_theme_is_renamed_pinned_and_hidden_from_the_page(app_env: AppEnv) -> None:
    seed(app_env.demo_db, recent_records())
    with Store(app_env.demo_db) as store:
        themes.recompute(store)
        first = next(iter(themes.themes(store)))
    at = run_page(app_env, THEMES, mode="demo")
    at.selectbox(key="theme_edit").set_value(first).run()
    at.text_input(key=f"theme_name_{first}").set_value("Our own name").run()
    next(b for b in at.button if b.label == "Rename").click().run()
    next(b for b in at.button if b.label == "Pin to the top").click().run()
    assert not at.exception
    with Store(app_env.demo_db) as store:
        info = themes.themes(store)[first]
    assert (info.name, info.pinned) == ("Our own name", True)
    assert at.dataframe[0].value["Theme"].iloc[0] == "Our own name"
    next(b for b in at.button if b.label == "Hide from rankings").click().run()
    assert "Our own name" not in list(at.dataframe[0].value["Theme"])


def test_demand_answers_what_enterprise_customers_are_unhappy_about(app_env: AppEnv) -> None:
    from feedback_sources import insights

    records = recent_records()
    # One enterprise account wrote the double-charge complaints.
    now = datetime.now(timezone.utc)
    records = [r.model_copy(update={"customer_tier": Tier.enterprise, "customer_email": "ap@bigcorp.example",
                                    "created_at": now - timedelta(minutes=5)})
               if r.source_id.startswith("charged_twice") else r for r in records]
    seed(app_env.demo_db, records)
    with Store(app_env.demo_db) as store:
        themes.recompute(store)
    at = run_page(app_env, "app_pages/demand.py", mode="demo")
    next(b for b in at.button if b.label == "What are enterprise customers unhappy about this month?").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="demand_kind").value == "discovered"
    frame = at.dataframe[0].value
    with Store(app_env.demo_db) as store:
        expected = insights.rank_discovered_themes(store, insights.unhappy_enterprise_this_month(
            datetime.now(timezone.utc).date()))
    assert list(frame["theme"]) == [t.key.label for t in expected.themes]
    assert set(frame["negative"]) == {"100%"}  # negative records only
    assert "In their words" in [s.value for s in at.subheader]
    quotes = [t for t in texts(at) if t.startswith("“")]
    assert quotes and all("charg" in q.lower() or "bill" in q.lower() or "refund" in q.lower() or "paid" in q.lower()
                          or "payment" in q.lower() for q in quotes)
