"""Where each source's credentials come from: process environment, a `.env` file, or the OS keyring.

Precedence follows tools such as gh and twine: the process environment wins over `.env`, which wins over the
keyring, so a CI job or a one-off shell can override what is stored without touching it. Values are only ever
written to the keyring, and only to one that keeps them encrypted: a missing, disabled or plaintext backend is
reported as unusable instead of silently storing secrets on disk.
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import keyring
import keyring.backend
import keyring.errors
from dotenv import dotenv_values
from keyring.backends import chainer, fail, null

from .sources import registry
from .sources.spec import FieldSpec, load_attribute

log = logging.getLogger(__name__)

SERVICE_NAME = "feedback-hub"

Origin = str  # "environment" | ".env" | "keyring" | "missing"
ORIGIN_ENVIRONMENT = "environment"
ORIGIN_DOTENV = ".env"
ORIGIN_KEYRING = "keyring"
ORIGIN_MISSING = "missing"

REDACTED = "***"


def _keyring_guidance() -> str:
    """What to do without a keyring, naming a real variable of the first registered source as the example."""
    example = next(
        (f.env_var for spec in registry().values() for f in spec.fields if f.secret and f.required),
        "the variables each source lists",
    )
    return (
        "Install or unlock a system keyring (Linux: gnome-keyring or KWallet via Secret Service; macOS: Keychain; "
        "Windows: Credential Locker), or provide the credentials as environment variables "
        f"(e.g. {example}) or in a .env file instead."
    )


def source_fields() -> dict[str, tuple[FieldSpec, ...]]:
    """Every registered source's fields, by source name (read from the registry, so plugins' fields are in it)."""
    return {name: spec.fields for name, spec in registry().items()}


def __getattr__(name: str) -> object:
    # Computed from the registry when first used, so importing this module loads no source.
    if name == "SOURCE_FIELDS":
        return source_fields()
    if name == "KEYRING_GUIDANCE":
        return _keyring_guidance()
    raise AttributeError(name)


DOTENV_MODE = 0o600  # owner read/write only: the file holds tokens in plain text


class KeyringUnavailable(RuntimeError):
    """The keyring cannot store or read credentials; the message says what to do instead."""


@dataclass(frozen=True)
class KeyringStatus:
    usable: bool
    backend: str
    message: str


class InMemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives as long as the process: for tests and for demo sessions.

    The priority is below the fail (0) and null (-1) backends so keyring's automatic detection never picks it:
    it is only used when passed explicitly or installed with `keyring.set_keyring`.
    """

    priority = -10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self._passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("no such entry") from None

    def __repr__(self) -> str:
        return f"<InMemoryKeyring entries={len(self._passwords)}>"


class ResolvedConfig(dict[str, str]):
    """A plain dict of field values whose repr masks secret fields, so an accidental print or log shows no token."""

    def __init__(self, values: Mapping[str, str], secret_fields: Iterable[str]) -> None:
        super().__init__(values)
        self._secret_fields = frozenset(secret_fields)

    def __repr__(self) -> str:
        shown = {key: (REDACTED if key in self._secret_fields else value) for key, value in self.items()}
        return repr(shown)

    __str__ = __repr__


def _normalize(source: str, spec: FieldSpec, raw: str) -> str:
    """Validate and normalize one value; errors name the field and never quote a secret."""
    value = raw.strip()
    if spec.secret:
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError(f"{spec.name}: contains spaces or control characters; paste the value alone.")
        return value
    if spec.choices is not None:
        lowered = value.lower()
        if lowered not in spec.choices:
            raise ValueError(f"{spec.name}: {value!r} is not one of {', '.join(spec.choices)}.")
        return lowered
    if spec.normalize is not None:
        # The source's own rule (e.g. a subdomain typed as a whole URL); its ValueError names the field.
        return str(load_attribute(spec.normalize)(value))
    if spec.name == "base_url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url: {value!r} must be an http:// or https:// URL.")
        return value.rstrip("/")
    return value


def _keyring_username(source: str, field: str) -> str:
    return f"{source}.{field}"


def _backend_name(backend: object) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_plaintext(backend: object) -> bool:
    kind = type(backend)
    qualified = f"{kind.__module__}.{kind.__qualname__}".lower()
    # keyrings.alt is the "not recommended" collection of file and legacy backends; none of them is a safe
    # default for tokens (some write plain text, some prompt on a terminal the app does not have).
    return "plaintext" in qualified or kind.__module__.startswith("keyrings.alt")


def _unusable_reason(backend: object) -> str | None:
    """Why this backend must not hold credentials, or None when it can."""
    name = _backend_name(backend)
    if isinstance(backend, fail.Keyring):
        return f"No system keyring is available (backend {name})."
    if isinstance(backend, null.Keyring):
        return f"The keyring is disabled (backend {name}): nothing can be stored in it."
    if _is_plaintext(backend):
        return f"The keyring backend {name} does not encrypt secrets, so it is not used."
    if isinstance(backend, chainer.ChainerBackend):
        chained = list(backend.backends)
        if not chained:
            return f"No system keyring is available (backend {name} has nothing to chain)."
        for inner in chained:
            reason = _unusable_reason(inner)
            if reason is not None:
                # Writes go to the first chained backend that accepts them, so one bad link is enough.
                return reason
    return None


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class CredentialStore:
    """Resolves, stores and forgets the credentials of each source."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        dotenv_path: str | Path | None = ".env",
        keyring_backend: keyring.backend.KeyringBackend | None = None,
    ) -> None:
        # os.environ itself (not a copy) so later changes to the process environment are seen.
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._dotenv_path = None if dotenv_path is None else Path(dotenv_path)
        self._keyring_backend = keyring_backend
        self._last_keyring_error: str | None = None

    def __repr__(self) -> str:
        backend = "default" if self._keyring_backend is None else _backend_name(self._keyring_backend)
        dotenv = None if self._dotenv_path is None else str(self._dotenv_path)
        return f"CredentialStore(dotenv_path={dotenv!r}, keyring_backend={backend!r})"

    # ---- reading -------------------------------------------------------------------------------------------

    def get_config(self, source: str) -> dict[str, str]:
        """Normalized values of every field set anywhere, plus defaults; ValueError names a malformed field."""
        config, _ = self.typed_config(source, {})
        return config

    def field_origins(self, source: str) -> dict[str, str]:
        """Where each field's value comes from: "environment", ".env", "keyring" or "missing"."""
        return {spec.name: self._resolve_field(source, spec)[1] for spec in _specs(source)}

    def missing_required(self, source: str) -> list[str]:
        origins = self.field_origins(source)
        return [spec.name for spec in _specs(source) if spec.required and origins[spec.name] == ORIGIN_MISSING]

    def is_configured(self, source: str) -> bool:
        return not self.missing_required(source)

    def secret_values(self) -> list[str]:
        """Every resolved secret, plus the encoded forms it travels in (for log redaction)."""
        values: set[str] = set()
        for source, source_spec in registry().items():
            resolved = {spec.name: self._resolve_field(source, spec)[0] for spec in source_spec.fields}
            for spec in source_spec.fields:
                value = resolved[spec.name]
                if spec.secret and value:
                    values.add(value.strip())
            if source_spec.secret_encodings is not None:
                # A source whose secrets travel encoded (a Basic-auth header) says how, so logs hide that form too.
                present = {name: value for name, value in resolved.items() if value}
                values.update(v for v in load_attribute(source_spec.secret_encodings)(present) if v)
        return sorted(values)

    # ---- writing -------------------------------------------------------------------------------------------

    def set(self, source: str, values: dict[str, str]) -> None:
        """Store the non-empty values in the keyring after validating every one of them."""
        specs = {spec.name: spec for spec in _specs(source)}
        to_store: dict[str, str] = {}
        for name, raw in values.items():
            spec = specs.get(name)
            if spec is None:
                raise ValueError(f"{name}: not a {source} field; expected one of {', '.join(specs)}.")
            if raw is None or not str(raw).strip():
                continue
            to_store[name] = _normalize(source, spec, str(raw))
        if not to_store:
            return
        backend = self._require_usable_backend()
        for name, value in to_store.items():
            self._call_backend(
                backend.set_password, SERVICE_NAME, _keyring_username(source, name), value, secrets=to_store.values()
            )

    def delete(self, source: str, fields: Iterable[str] | None = None) -> None:
        """Remove fields (default: all of the source's fields) from the keyring; absent entries are ignored."""
        specs = {spec.name: spec for spec in _specs(source)}
        names = list(specs) if fields is None else list(fields)
        for name in names:
            if name not in specs:
                raise ValueError(f"{name}: not a {source} field; expected one of {', '.join(specs)}.")
        backend = self._require_usable_backend()
        for name in names:
            username = _keyring_username(source, name)
            stored = self._call_backend(backend.get_password, SERVICE_NAME, username)
            if stored is None:
                continue
            self._call_backend(backend.delete_password, SERVICE_NAME, username, secrets=[stored])

    def typed_config(self, source: str, typed: Mapping[str, str | None]) -> tuple[dict[str, str], list[str]]:
        """The configuration a connection test should use: what was typed, else what is set.

        Returns the config and the names of the fields whose typed value was used, so the caller can say whether it
        tested unsaved values. A malformed typed value raises ValueError naming the field (never quoting a secret);
        a malformed saved value of a field that was typed over does not matter.
        """
        specs = _specs(source)
        known = {spec.name for spec in specs}
        unknown = [name for name in typed if name not in known]
        if unknown:
            raise ValueError(f"{unknown[0]}: not a {source} field; expected one of {', '.join(sorted(known))}.")
        entered = {name: str(value).strip() for name, value in typed.items() if value is not None and str(value).strip()}
        config: dict[str, str] = {}
        for spec in specs:
            if spec.name in entered:
                config[spec.name] = _normalize(source, spec, entered[spec.name])
                continue
            value, origin = self._resolve_field(source, spec)
            if value is None:
                if spec.default is not None:
                    config[spec.name] = spec.default
                continue
            try:
                config[spec.name] = _normalize(source, spec, value)
            except ValueError as error:
                where = spec.env_var if origin == ORIGIN_ENVIRONMENT else f"{spec.env_var} in {origin}"
                raise ValueError(f"{source} {error} (from {where})") from None
        used = [spec.name for spec in specs if spec.name in entered]
        return ResolvedConfig(config, (spec.name for spec in specs if spec.secret)), used

    def dotenv_file(self) -> Path | None:
        """The `.env` file this store reads (and `write_dotenv` writes), as an absolute path."""
        if self._dotenv_path is None:
            return None
        return self._dotenv_path if self._dotenv_path.is_absolute() else Path.cwd() / self._dotenv_path

    def write_dotenv(self, source: str, values: Mapping[str, str | None]) -> Path:
        """Write the non-empty values into the `.env` file, readable by its owner only (0600).

        The fallback for a machine without a usable keyring, and only on an explicit request: the caller asks the
        person first, because the file holds the tokens in plain text. Other lines of an existing file are kept; a
        variable already in it is replaced in place. The file is written beside itself and renamed, so a crash never
        leaves half a file, and it is 0600 from its first byte (an existing broader mode is tightened).
        """
        path = self.dotenv_file()
        if path is None:
            raise ValueError("no .env file is configured for this credential store.")
        specs = {spec.name: spec for spec in _specs(source)}
        to_write: dict[str, str] = {}
        for name, raw in values.items():
            spec = specs.get(name)
            if spec is None:
                raise ValueError(f"{name}: not a {source} field; expected one of {', '.join(specs)}.")
            if raw is None or not str(raw).strip():
                continue
            to_write[spec.env_var] = _normalize(source, spec, str(raw))
        if not to_write:
            raise ValueError("nothing to write: every field was empty.")
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        pending = dict(to_write)
        kept: list[str] = []
        for line in lines:
            match = _DOTENV_ASSIGNMENT.match(line)
            name = match.group(1) if match else None
            if name in to_write:
                if name in pending:
                    kept.append(_dotenv_line(name, pending.pop(name)))
                continue  # a second assignment of a replaced variable would shadow the new value
            kept.append(line)
        kept.extend(_dotenv_line(name, value) for name, value in pending.items())
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, DOTENV_MODE)
        try:
            os.fchmod(descriptor, DOTENV_MODE)  # O_CREAT's mode is filtered by the umask and ignored if it existed
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write("\n".join(kept) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        with _DOTENV_LOCK:  # the renamed file has a new inode anyway; forgetting it makes the next read certain
            _DOTENV_CACHE.pop(path, None)
        return path

    # ---- keyring -------------------------------------------------------------------------------------------

    def keyring_status(self) -> KeyringStatus:
        try:
            backend = self._backend()
        except Exception as error:  # keyring's own detection can fail on broken desktop setups
            message = f"The keyring could not be loaded ({type(error).__name__}). {_keyring_guidance()}"
            return KeyringStatus(False, "unknown", message)
        name = _backend_name(backend)
        reason = _unusable_reason(backend)
        if reason is not None:
            return KeyringStatus(False, name, f"{reason} {_keyring_guidance()}")
        if self._last_keyring_error is not None:
            return KeyringStatus(False, name, f"The keyring failed: {self._last_keyring_error} {_keyring_guidance()}")
        if isinstance(backend, InMemoryKeyring):
            return KeyringStatus(True, name, "In-memory keyring: stored values last until the app stops.")
        return KeyringStatus(True, name, f"Credentials are stored in the system keyring ({name}).")

    def _backend(self) -> keyring.backend.KeyringBackend:
        # Looked up on each use so `keyring.set_keyring` after construction (as tests do) takes effect.
        return self._keyring_backend if self._keyring_backend is not None else keyring.get_keyring()

    def _require_usable_backend(self) -> keyring.backend.KeyringBackend:
        try:
            backend = self._backend()
        except Exception as error:
            raise KeyringUnavailable(
                f"The keyring could not be loaded ({type(error).__name__}). {_keyring_guidance()}"
            ) from None
        reason = _unusable_reason(backend)
        if reason is not None:
            raise KeyringUnavailable(f"{reason} {_keyring_guidance()}")
        return backend

    def _call_backend(self, method: Any, *args: str, secrets: Iterable[str] = ()) -> Any:
        """Run one backend call; any failure becomes KeyringUnavailable whose text holds no secret."""
        failure: KeyringUnavailable | None = None
        try:
            result = method(*args)
        except Exception as error:  # backends raise KeyringError, dbus, OS and Windows errors alike
            detail = self._describe_error(error, secrets)
            self._last_keyring_error = detail
            # Built here but raised below so the original exception (which may echo the value) is not chained.
            failure = KeyringUnavailable(f"The keyring failed: {detail} {_keyring_guidance()}")
        if failure is not None:
            raise failure
        self._last_keyring_error = None
        return result

    def _describe_error(self, error: BaseException, secrets: Iterable[str]) -> str:
        known = list(secrets) + self._secret_values_quietly()
        text = _scrub(str(error), known) or "no detail given"
        if isinstance(error, keyring.errors.KeyringLocked):
            return f"the keyring is locked ({text}); unlock it and try again."
        return f"{type(error).__name__}: {text}"

    def _secret_values_quietly(self) -> list[str]:
        values = []
        for specs in source_fields().values():
            for spec in specs:
                if spec.secret:
                    value = self._env_or_dotenv(spec)[0]
                    if value:
                        values.append(value)
        return values

    # ---- resolution ----------------------------------------------------------------------------------------

    def _dotenv_values(self) -> dict[str, str]:
        if self._dotenv_path is None:
            return {}
        path = self._dotenv_path if self._dotenv_path.is_absolute() else Path.cwd() / self._dotenv_path
        return read_dotenv(path)

    def _env_or_dotenv(self, spec: FieldSpec) -> tuple[str | None, Origin]:
        value = self._environ.get(spec.env_var)
        if value is not None and value.strip():
            return value.strip(), ORIGIN_ENVIRONMENT
        value = self._dotenv_values().get(spec.env_var)
        if value is not None and value.strip():
            return value.strip(), ORIGIN_DOTENV
        return None, ORIGIN_MISSING

    def _resolve_field(self, source: str, spec: FieldSpec) -> tuple[str | None, Origin]:
        value, origin = self._env_or_dotenv(spec)
        if value is not None:
            return value, origin
        stored = self._read_keyring(source, spec.name)
        if stored is not None and stored.strip():
            return stored.strip(), ORIGIN_KEYRING
        return None, ORIGIN_MISSING

    def _read_keyring(self, source: str, field: str) -> str | None:
        """A value from the keyring, or None when it is absent or the keyring cannot be used (status says why)."""
        try:
            backend = self._backend()
        except Exception:
            return None
        if _unusable_reason(backend) is not None:
            return None
        previous_error = self._last_keyring_error
        try:
            return self._call_backend(backend.get_password, SERVICE_NAME, _keyring_username(source, field))
        except KeyringUnavailable as error:
            if self._last_keyring_error != previous_error:  # once per distinct failure, not once per field
                log.warning("%s", error)
            return None


def prompted_fields(source: str) -> tuple[FieldSpec, ...]:
    """The fields `credentials set` asks for, in order (the base URL override is for tests and proxies only)."""
    return tuple(spec for spec in _specs(source) if spec.name != "base_url")


def parse_piped_values(source: str, text: str) -> dict[str, str]:
    """Field values read from standard input, for scripted set-up (`printf ... | python -m feedback_sources ...`).

    Two forms, as `gh auth login --with-token` reads a token from a pipe rather than from the command line (where it
    would land in the shell history and the process list):

    - one value per line in the order the prompts ask (blank line = skip an optional field; trailing ones may be
      left out), e.g. subdomain, email, API token, webhook secret for a source with those four fields;
    - or `FIELD=value` lines, FIELD being a field name (`api_token`) or its variable (`ACME_API_TOKEN`),
      any order, `#` comments allowed.

    A line counts as `FIELD=value` only when FIELD is one of the source's names, so a token ending in "=" is still
    read as a value. Mixing both forms is refused rather than guessed.
    """
    specs = _specs(source)
    by_name = {spec.name: spec for spec in specs} | {spec.env_var: spec for spec in specs}
    lines = text.splitlines()
    assigned: dict[str, str] = {}
    plain = 0
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        spec = by_name.get(key.strip()) if sep else None
        if spec is None:
            plain += 1
            continue
        assigned[spec.name] = value.strip()
    if assigned and plain:
        raise ValueError(
            "standard input mixes FIELD=value lines with bare values; use one form "
            f"(fields: {', '.join(spec.name for spec in specs)})."
        )
    if assigned:
        return {name: value for name, value in assigned.items() if value}
    fields = prompted_fields(source)
    values = [line.strip() for line in lines]
    while values and not values[-1]:
        values.pop()
    if len(values) > len(fields):
        raise ValueError(
            f"standard input has {len(values)} lines but {source} takes at most {len(fields)} "
            f"({', '.join(spec.name for spec in fields)})."
        )
    return {spec.name: value for spec, value in zip(fields, values) if value}


_DOTENV_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _dotenv_line(name: str, value: str) -> str:
    # Single quotes: python-dotenv takes the value literally (no "$" interpolation), escaping only \\ and \'.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"{name}='{escaped}'"


# -- the .env file ---------------------------------------------------------------------------------------------------


class DotenvError(ValueError):
    """A `.env` file that cannot be read as credentials; the message names the file and the line to fix."""


# Parsed .env files by path, with the (mtime, size, inode) they were read at. Every field of every source is resolved
# through the same file, many times per action: parsing it once per process (again only when it changes) keeps a
# large file from costing seconds per field.
_DOTENV_CACHE: dict[Path, tuple[tuple[int, int, int], dict[str, str]]] = {}
_DOTENV_LOCK = threading.Lock()


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables `path` sets ({} when it does not exist), cached until the file changes.

    Raises DotenvError when the file is not UTF-8, naming the line, instead of a UnicodeDecodeError from deep inside
    a connection test."""
    try:
        status = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    if not path.is_file():
        return {}
    stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
    with _DOTENV_LOCK:
        cached = _DOTENV_CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DotenvError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {column}); "
            "save the file as UTF-8 or remove that character."
        ) from None
    # No interpolation: tokens may legitimately contain "$" and must be used verbatim.
    parsed = dotenv_values(stream=io.StringIO(text.removeprefix("\ufeff")), interpolate=False)
    values = {key: value for key, value in parsed.items() if value is not None}
    with _DOTENV_LOCK:
        _DOTENV_CACHE[path] = (stamp, values)
    return values


def _specs(source: str) -> tuple[FieldSpec, ...]:
    specs = registry()
    try:
        return specs[source].fields
    except KeyError:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(specs)}.") from None
