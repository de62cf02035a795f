"""The vocabularies a filter offers (tiers, categories, sentiments) and how a value or a source reads on a page.

Every page shows these the same way; source names come from the registry, read when asked, never at import.
"""

from __future__ import annotations

from ..models import Category, Tier
from ..sources import registry
from ..store import UNKNOWN_TIER

TIER_VALUES: tuple[str, ...] = (*(t.value for t in Tier), UNKNOWN_TIER)
CATEGORY_VALUES: tuple[str, ...] = tuple(c.value for c in Category)
SENTIMENT_VALUES = ("negative", "neutral", "positive")


def human_label(value: str) -> str:
    """A vocabulary value (bug_report, enterprise) as a person reads it."""
    return value.replace("_", " ").capitalize()


def source_labels() -> dict[str, str]:
    """Every registered source's product name (its spec's label), by source name."""
    return {name: spec.label for name, spec in registry().items()}


def source_label(source: str) -> str:
    """A source's product name from its spec; the stored name of a source no longer registered."""
    spec = registry().get(source)
    return spec.label if spec is not None else source


def __getattr__(name: str) -> object:
    # The registry is read when this is first used, not when this module is imported.
    if name == "SOURCE_LABELS":
        return source_labels()
    raise AttributeError(name)
