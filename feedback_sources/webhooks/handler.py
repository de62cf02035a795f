"""What a source declares about its webhooks: one `WebhookHandler`, named by `SourceSpec.webhook`.

The receiver, the fetch worker and the Webhooks page know no vendor: they iterate the registry and call the handler
of each source that has one. A source without a webhook part simply has no route, no row and no button.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import FetchJob
    from .payloads import Interpretation, MappingContext

# (headers, secrets, now): raise SignatureError when the headers alone prove the delivery cannot be valid.
HeaderCheck = Callable[[Mapping[str, str], Mapping[str, str], float], None]
# (headers, raw body, secrets, now): raise SignatureError unless the body carries a valid signature.
BodyCheck = Callable[[Mapping[str, str], bytes, Mapping[str, str], float], None]
# (payload, context) -> what the delivery means.
Interpreter = Callable[[dict[str, Any], "MappingContext"], "Interpretation"]
# (integration, job, cache) -> the records the job points at (RecordGone when the vendor no longer has it).
Fetcher = Callable[[Any, "FetchJob", dict[str, Any]], Awaitable[list[Any]]]


@dataclass(frozen=True)
class WebhookHandler:
    """Everything the receiver and the Webhooks page need to know about one source's webhooks.

    Signatures: `secret_fields` (all required: a source missing any of them rejects every delivery, fail closed)
    and where a person sets them (`secret_env_vars`); `check_headers` runs before a body byte is read, `verify` over
    the exact bytes received. `context_fields` are further settings the interpreter reads (e.g. the account address
    for agent links), taken from the configuration or else from the configured integration's attribute of the same
    name. `fetchers` map a FetchJob kind to the coroutine that fetches the full record.

    The page: `register_caption` under the Register button; `returned_secret` names the integration attribute that
    holds a signing secret the vendor hands out on registration (saved as the credential field of the same name);
    `manual_events` are the events a person ticks by hand when the vendor has no registration API (the demo emulator
    does it instead); `test_event_kind` is what a demo test event announces.
    """

    source: str
    secret_fields: tuple[str, ...]
    secret_env_vars: tuple[str, ...]
    check_headers: HeaderCheck
    verify: BodyCheck
    interpret: Interpreter
    fetchers: Mapping[str, Fetcher] = field(default_factory=dict)
    context_fields: tuple[str, ...] = ()
    # -- the Webhooks page --
    register_caption: str = ""
    events_phrase: str = "events"
    registered_message: str = "{label} will post {events} to {url}."
    returned_secret: str | None = None
    secret_location: str = ""
    manual_events: tuple[str, ...] = ()
    test_event_kind: str | None = None
    queued_note: str = "the receiver is fetching the record now"
    extras: dict[str, Any] = field(default_factory=dict)


_CACHE: tuple[object, dict[str, WebhookHandler]] | None = None


def webhook_handlers() -> dict[str, WebhookHandler]:
    """The webhook handler of every registered source that has one, in registry order (loaded once per registry:
    every delivery asks)."""
    global _CACHE
    from ..sources import registry

    specs = registry()
    if _CACHE is not None and _CACHE[0] is specs:
        return _CACHE[1]
    handlers: dict[str, WebhookHandler] = {}
    for name, spec in specs.items():
        if spec.webhook is None or spec.kind != "api":
            continue
        handler = spec.load("webhook")
        if not isinstance(handler, WebhookHandler):
            raise TypeError(f"{spec.webhook} is not a WebhookHandler")
        handlers[name] = handler
    _CACHE = (specs, handlers)
    return handlers


def webhook_sources() -> tuple[str, ...]:
    """The sources the receiver has a route for."""
    return tuple(webhook_handlers())


def get_handler(source: str) -> WebhookHandler:
    handlers = webhook_handlers()
    try:
        return handlers[source]
    except KeyError:
        raise ValueError(f"no webhooks for source {source!r}; sources with webhooks: {', '.join(handlers)}") from None


def vendor_attribute(name: str) -> Any:
    """A name defined by one of the sources' webhook modules (keeps `signatures.<vendor>_signature` and the like
    importable from the shared modules). AttributeError when none defines it."""
    from importlib import import_module

    from ..sources import registry

    for spec in registry().values():
        if spec.webhook is None:
            continue
        module = import_module(spec.webhook.partition(":")[0])
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)
