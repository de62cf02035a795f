"""What a source declares about itself: one `SourceSpec` per source package.

Everything outside a source's package that needs to know about a source reads it from here: the CLI's choices, the
Connections, Sync, Health and Webhooks pages, credentials, the workspace, the receiver's routes and the emulator.
Heavy parts (the integration class, webhook handling, the emulator, a settings panel) are named as
"module:attribute" strings and imported on first use, so reading the registry stays cheap (`feedback-hub --help`
imports no httpx, pydantic or streamlit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # only for the annotation: reading the registry imports no keyring
    from ..credentials import CredentialStore


def load_attribute(target: str) -> Any:
    """Import "package.module:attribute" and return the attribute."""
    module_name, _, attribute = target.partition(":")
    return getattr(import_module(module_name), attribute)


@dataclass(frozen=True)
class FieldSpec:
    """One credential or setting field of a source, described as data so the UI, the CLI and validation share it.

    `secret` fields go to the keyring (or the environment / .env) and are never shown; other fields are settings.
    `normalize` is "module:function" taking the typed text and returning the value to store, raising ValueError
    with a message a PM can act on.
    """

    name: str
    env_var: str
    secret: bool
    required: bool
    label: str
    help: str
    choices: tuple[str, ...] | None = None
    # Used by get_config when the field is set nowhere; the origin still reads "missing".
    default: str | None = None
    normalize: str | None = None


@dataclass(frozen=True)
class AccountTraits:
    """Where a source's records carry the customer's organization (for grouping people into accounts)."""

    organization_id_field: str | None = None  # metadata key of the vendor's organization / company id
    organization_name_field: str | None = None  # metadata key of its name


@dataclass(frozen=True)
class RuleTraits:
    """What the tier/category rules may read in a source's records."""

    content_only: bool = False  # no vendor category: the category comes from the words alone
    nps: bool = False  # records may carry an NPS score that decides the category
    organization: bool = False  # the organization name in metadata is a tier clue
    vendor_type: bool = False  # metadata.type is the vendor's own ticket type (problem, incident, ...)


@dataclass(frozen=True)
class SettingsPanelContext:
    """What the Connections page hands a source's `settings_panel` function, which draws into the current tab.

    `mode` is "demo" or "real" (the workspace shown); `credentials` is where the source's fields are saved and read
    (`credentials.get_config(source)`, `credentials.set(source, {...})`); `db_path` is that workspace's store, for a
    panel that previews records or keeps settings next to them.
    """

    source: str
    mode: Literal["demo", "real"]
    credentials: CredentialStore
    db_path: Path


@dataclass(frozen=True)
class SourceSpec:
    """One source: its name, how it is shown, its fields, and where its parts live.

    Only `name`, `label`, `integration` and `fields` are needed for a working source; the rest is optional so a
    minimal plugin stays small.
    """

    name: str
    label: str
    # "module:Class" of the BaseIntegration subclass.
    integration: str
    fields: tuple[FieldSpec, ...] = ()
    color: str = "#6B7280"
    description: str = ""
    # "api": pulls over HTTP with credentials; "file": reads files the PM provides (no network, no webhooks).
    kind: Literal["api", "file"] = "api"
    accounts: AccountTraits = field(default_factory=AccountTraits)
    rules: RuleTraits = field(default_factory=RuleTraits)
    # What the vendor's reported total means on the Health page ("" when it reports none).
    total_meaning: str = ""
    # "module:function(base_url) -> dict[str, str]": the demo workspace's configuration against the emulator.
    demo_config: str | None = None
    # "module:attribute" of the source's webhook handling (verify, interpret, fetch, register), None without one.
    webhook: str | None = None
    # "module:attribute" of the source's emulator vendor (dataset + HTTP API), None when it has none.
    emulator: str | None = None
    # "module:function(context)": an extra section the Connections page shows for this source (e.g. a column
    # mapping with a preview); None for sources whose fields say everything.
    settings_panel: str | None = None
    # "module:attribute" of the source's harness for the standard acceptance suite (tests only).
    harness: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # The reported total counts more than the records created in the range (`total_meaning` says what), so a
    # shortfall on a partial range is an upper bound, not missing records.
    total_upper_bound: bool = False
    # When the vendor reports a total, for the Health page while none is known yet ("" when it always does or never).
    total_hint: str = ""
    # "module:function(config: Mapping[str, str]) -> list[str]": the encoded forms the source's secrets travel in
    # (e.g. a Basic-auth header value), so log redaction hides them too; None when secrets travel as they are.
    secret_encodings: str | None = None

    def integration_class(self) -> Any:
        return load_attribute(self.integration)

    def load(self, part: str) -> Any:
        """The object a "module:attribute" part names, or None when the source has no such part."""
        target = getattr(self, part)
        return None if target is None else load_attribute(target)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.secret)


def base_url_field(env_var: str, example: str) -> FieldSpec:
    """The optional base URL override every API source offers (another server for tests or a proxy)."""
    return FieldSpec(
        name="base_url",
        env_var=env_var,
        secret=False,
        required=False,
        label="Base URL override",
        help=f"Only for testing against another server, e.g. {example}. Leave empty for the vendor's API.",
    )
