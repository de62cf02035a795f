from __future__ import annotations

import pytest

from feedback_sources.models import Category, Tier
from feedback_sources.rules import DEFAULT_RULES, Decision, Rules


def test_tag_beats_vendor_type_beats_keyword() -> None:
    assert DEFAULT_RULES.categorize(tags=["Feature_Request"], vendor_type="problem", text="it crashes") == Decision(
        "feature_request", "tag `Feature_Request`")
    assert DEFAULT_RULES.categorize(tags=["billing"], vendor_type="problem", text="please add") == Decision(
        "bug_report", "vendor type `problem`")
    assert DEFAULT_RULES.categorize(text="It would be nice to have dark mode") == Decision(
        "feature_request", "keyword `it would be nice`")
    assert DEFAULT_RULES.categorize(text="nothing special", default=Category.support) == Decision(
        "support", "default for this source")


def test_keywords_match_whole_words_only() -> None:
    assert DEFAULT_RULES.categorize(text="the debugger is great").value == "other"
    assert DEFAULT_RULES.categorize(text="found a bug.").value == "bug_report"


@pytest.mark.parametrize("plan,tier", [
    ("Enterprise", Tier.enterprise), ("enterprise-annual", Tier.enterprise), ("Business Plus", Tier.business),
    ("Pro", Tier.professional), ("Professional", Tier.professional), ("Free trial", Tier.free),
    ("Team", Tier.business),
])
def test_plan_names_map_to_tiers(plan: str, tier: Tier) -> None:
    assert DEFAULT_RULES.tier(("plan", plan)).value == tier.value


def test_tier_unknown_without_plan() -> None:
    assert DEFAULT_RULES.tier(("plan", None), ("org", "")) == Decision(None, "no plan information")


def test_rules_round_trip_as_json() -> None:
    custom = Rules(tag_categories={"ux": Category.complaint}, keyword_categories=(("slow", Category.bug_report),))
    assert Rules.from_json(custom.to_json()) == custom


def test_invalid_rules_file_says_why() -> None:
    with pytest.raises(ValueError, match="invalid rules file"):
        Rules.from_json('{"tag_categories": {"x": "not-a-category"}}')
