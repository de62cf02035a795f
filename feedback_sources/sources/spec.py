"""What a source declares about itself: one `SourceSpec` per source package.

Everything outside a source's package that needs to know about a source reads it from here: the CLI's choices, the
Connections, Sync, Health and Webhooks pages, credentials, the workspace, the receiver's routes and the emulator.
Heavy parts (the integration class, webhook handling, the emulator) are named as "module:attribute" strings and
imported on first use, so reading the registry stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any


def load_attribute(target: str) -> Any:
    """Import "package.module:attribute" and return the attribute."""
    module_name, _, attribute = target.partition(":")
    return getattr(import_module(module_name), attribute)


@dataclass(frozen=True)
class SourceSpec:
    """One source: its name, how it is shown, and where its parts live.

    `integration` is "module:Class" of its `BaseIntegration` subclass. The other parts are optional so that a
    minimal plugin is a name, a label, its fields and an integration class.
    """

    name: str
    label: str
    integration: str
    color: str = "#6B7280"
    extras: dict[str, Any] = field(default_factory=dict)

    def integration_class(self) -> Any:
        return load_attribute(self.integration)
