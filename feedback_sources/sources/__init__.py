"""The source registry: the one place a source is named.

Each source is a package that exposes a `SourceSpec` (see `spec.py`) and registers it through the
`feedback_hub.sources` entry-point group, the built-in sources exactly like a third-party plugin (as Datasette ships
its own features as plugins). `DEFAULT_SOURCES` lists the built-in specs so a checkout that was never `pip install`ed
still finds them; an installed distribution finds them through its entry points as well, and a spec is only loaded
once.

The registry is light on purpose: `feedback-hub --help` lists the sources without importing httpx or pydantic, so a
spec names its integration class as a "module:attribute" string that is imported only when a sync needs it.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import entry_points

from .spec import SourceSpec

logger = logging.getLogger("feedback_sources.sources")

ENTRY_POINT_GROUP = "feedback_hub.sources"

# The built-in sources, in the order the app shows them.
DEFAULT_SOURCES: tuple[str, ...] = (
    "feedback_sources.sources.zendesk:SPEC",
    "feedback_sources.sources.intercom:SPEC",
    "feedback_sources.sources.surveymonkey:SPEC",
    "feedback_sources.sources.spreadsheet:SPEC",
)

_SPECS: dict[str, SourceSpec] | None = None


def _load(target: str) -> SourceSpec:
    module_name, _, attribute = target.partition(":")
    spec = getattr(import_module(module_name), attribute or "SPEC")
    if not isinstance(spec, SourceSpec):
        raise TypeError(f"{target} is not a SourceSpec")
    return spec


def registry() -> dict[str, SourceSpec]:
    """Every registered source by name: the built-in ones first, then plugins in entry-point order."""
    global _SPECS
    if _SPECS is not None:
        return _SPECS
    specs: dict[str, SourceSpec] = {}
    for target in DEFAULT_SOURCES:
        spec = _load(target)
        specs[spec.name] = spec
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.value in DEFAULT_SOURCES:
            continue
        try:
            spec = entry.load()
        except Exception:  # a broken plugin must not take the built-in sources down with it
            logger.exception("could not load source entry point %s", entry.name)
            continue
        if not isinstance(spec, SourceSpec):
            logger.warning("entry point %s is not a SourceSpec; ignored", entry.name)
            continue
        specs.setdefault(spec.name, spec)
    _SPECS = specs
    return specs


def reset_registry() -> None:
    """Forget the loaded specs (tests install a plugin and look again)."""
    global _SPECS
    _SPECS = None


def builtin_specs() -> tuple[SourceSpec, ...]:
    """The built-in sources only, in `DEFAULT_SOURCES` order.

    What the store's schema is built from (the accounts column, the vendor-type index): a schema cannot change
    when a plugin is installed or removed, so it never reads the entry points.
    """
    return tuple(_load(target) for target in DEFAULT_SOURCES)


def vendor_type_index_source() -> str:
    """The built-in source whose `metadata.type` the store indexes for the ticket-type rules."""
    return next(spec.name for spec in builtin_specs() if spec.rules.vendor_type)


def source_names() -> tuple[str, ...]:
    return tuple(registry())


def get_spec(name: str) -> SourceSpec:
    specs = registry()
    try:
        return specs[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; known sources: {', '.join(specs)}") from None


def load_builtin_integrations() -> dict[str, object]:
    """Every registered source's integration class by source name (importing a class also registers it)."""
    classes: dict[str, object] = {}
    for spec in registry().values():
        try:
            classes[spec.name] = spec.integration_class()
        except Exception:  # a plugin whose integration cannot be imported must not hide the others
            logger.exception("could not import the integration of source %s", spec.name)
    return classes


def __getattr__(name: str) -> object:
    # `SOURCES` reads the registry when first used, not when this module is imported.
    if name == "SOURCES":
        return source_names()
    raise AttributeError(name)
