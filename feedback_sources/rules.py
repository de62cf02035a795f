"""Explainable classification: which category and tier a record gets, and why.

Rules are plain data (tag → category, ticket type → category, keyword → category, plan → tier) applied in a fixed
order of precedence: a tag beats a vendor field, which beats a keyword, which beats the default. Every decision
carries a human-readable reason so the PM can see why a record landed where it did.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .models import Category, Tier

# How a reason begins when the record's own data names its category outright (a spreadsheet's category column that
# says "Bug report"): no rule decided it, so no rules change moves it.
STATED_REASON_PREFIX = "column `"

DEFAULT_TAG_CATEGORIES: dict[str, Category] = {
    "bug": Category.bug_report,
    "bug_report": Category.bug_report,
    "defect": Category.bug_report,
    "crash": Category.bug_report,
    "feature_request": Category.feature_request,
    "feature-request": Category.feature_request,
    "feature": Category.feature_request,
    "enhancement": Category.feature_request,
    "idea": Category.feature_request,
    "question": Category.question,
    "how_to": Category.question,
    "howto": Category.question,
    "praise": Category.praise,
    "kudos": Category.praise,
    "compliment": Category.praise,
    "complaint": Category.complaint,
    "churn_risk": Category.complaint,
    "support": Category.support,
}

DEFAULT_TYPE_CATEGORIES: dict[str, Category] = {
    "problem": Category.bug_report,
    "incident": Category.bug_report,
    "question": Category.question,
    "task": Category.support,
}

# Ordered: the first keyword found in the text decides.
DEFAULT_KEYWORD_CATEGORIES: tuple[tuple[str, Category], ...] = (
    ("crash", Category.bug_report),
    ("crashes", Category.bug_report),
    ("error", Category.bug_report),
    ("bug", Category.bug_report),
    ("broken", Category.bug_report),
    ("not working", Category.bug_report),
    ("doesn't work", Category.bug_report),
    ("feature request", Category.feature_request),
    ("would be great", Category.feature_request),
    ("would love", Category.feature_request),
    ("please add", Category.feature_request),
    ("it would be nice", Category.feature_request),
    ("wish", Category.feature_request),
    ("refund", Category.complaint),
    ("disappointed", Category.complaint),
    ("frustrated", Category.complaint),
    ("cancel", Category.complaint),
    ("how do i", Category.question),
    ("how can i", Category.question),
    ("is it possible", Category.question),
    ("love", Category.praise),
    ("thank you", Category.praise),
    ("great job", Category.praise),
)

# Ordered: "enterprise" is checked before "pro" so "Enterprise Pro" is enterprise.
DEFAULT_PLAN_TIERS: tuple[tuple[str, Tier], ...] = (
    ("enterprise", Tier.enterprise),
    ("business", Tier.business),
    ("premium", Tier.business),
    ("team", Tier.business),
    ("professional", Tier.professional),
    ("growth", Tier.professional),
    ("pro", Tier.professional),
    ("free", Tier.free),
    ("trial", Tier.free),
    ("starter", Tier.free),
)


@dataclass(frozen=True)
class Decision:
    value: str | None
    reason: str


@dataclass(frozen=True)
class Rules:
    tag_categories: dict[str, Category] = field(default_factory=lambda: dict(DEFAULT_TAG_CATEGORIES))
    type_categories: dict[str, Category] = field(default_factory=lambda: dict(DEFAULT_TYPE_CATEGORIES))
    keyword_categories: tuple[tuple[str, Category], ...] = DEFAULT_KEYWORD_CATEGORIES
    plan_tiers: tuple[tuple[str, Tier], ...] = DEFAULT_PLAN_TIERS

    @cached_property
    def _keyword_patterns(self) -> tuple[tuple[re.Pattern[str], str, Category], ...]:
        return tuple(
            (re.compile(r"(?<!\w)" + re.escape(word.lower()) + r"(?!\w)"), word, category)
            for word, category in self.keyword_categories
        )

    @cached_property
    def _plan_patterns(self) -> tuple[tuple[re.Pattern[str], str, Tier], ...]:
        return tuple(
            (re.compile(r"(?<![a-z])" + re.escape(word.lower()) + r"(?![a-z])"), word, tier)
            for word, tier in self.plan_tiers
        )

    def categorize(
        self,
        *,
        tags: Iterable[str] = (),
        vendor_type: str | None = None,
        text: str = "",
        default: Category = Category.other,
    ) -> Decision:
        for tag in tags:
            category = self.tag_categories.get(tag.strip().lower())
            if category is not None:
                return Decision(category.value, f"tag `{tag}`")
        if vendor_type:
            category = self.type_categories.get(vendor_type.lower())
            if category is not None:
                return Decision(category.value, f"vendor type `{vendor_type}`")
        lowered = text.lower()
        if lowered:
            for pattern, word, category in self._keyword_patterns:
                if pattern.search(lowered):
                    return Decision(category.value, f"keyword `{word}`")
        return Decision(default.value, "default for this source")

    def tier(self, *candidates: tuple[str, str | None]) -> Decision:
        """Pick a tier from (label, value) candidates such as ("plan", "Enterprise annual")."""
        for label, value in candidates:
            if not value:
                continue
            lowered = str(value).lower()
            for pattern, word, tier in self._plan_patterns:
                if pattern.search(lowered):
                    return Decision(tier.value, f"{label} `{value}` matches `{word}`")
        return Decision(None, "no plan information")

    def to_json(self) -> str:
        return json.dumps(
            {
                "tag_categories": {k: v.value for k, v in self.tag_categories.items()},
                "type_categories": {k: v.value for k, v in self.type_categories.items()},
                "keyword_categories": [[k, v.value] for k, v in self.keyword_categories],
                "plan_tiers": [[k, v.value] for k, v in self.plan_tiers],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Rules:
        data = json.loads(text)
        try:
            return cls(
                tag_categories={k.lower(): Category(v) for k, v in data.get("tag_categories", {}).items()},
                type_categories={k.lower(): Category(v) for k, v in data.get("type_categories", {}).items()},
                keyword_categories=tuple((k, Category(v)) for k, v in data.get("keyword_categories", [])),
                plan_tiers=tuple((k, Tier(v)) for k, v in data.get("plan_tiers", [])),
            )
        except ValueError as error:
            raise ValueError(f"invalid rules file: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> Rules:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


DEFAULT_RULES = Rules()
