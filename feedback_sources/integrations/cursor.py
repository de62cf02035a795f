"""The base of every vendor's sync cursor: a pydantic model that round-trips through the dict the store keeps.

A cursor is stored as JSON next to the page it belongs to and read back by the next sync, possibly by a newer
version of Feedback Hub, possibly after someone edited the store by hand. Loading one therefore:

- refuses anything that does not validate (wrong types, unknown keys, impossible combinations) with a typed
  `SourceError` (kind `client`) whose hint says to reset the position and run a full sync;
- refuses a cursor written by a newer version (its `cursor_version` is higher than this code's) instead of
  misreading it, and passes an older one through `upgrade()`.

Version 1 cursors carry no version key at all: that keeps the dicts stored before the key existed loading as they
are, and the dicts written by version-1 cursors identical to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from .http import ErrorKind, SourceError

__all__ = ["FULL_SYNC_HINT", "VERSION_KEY", "VendorCursor"]

VERSION_KEY = "cursor_version"
FULL_SYNC_HINT = "Reset this source's sync position to run a full sync."


def _reason(error: ValidationError) -> str:
    """Pydantic's errors as one short line: "`page`: Input should be greater than or equal to 1"."""
    parts = []
    for item in error.errors(include_url=False)[:3]:
        where = ".".join(str(step) for step in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"`{where}`: {message}" if where else message)
    return "; ".join(parts)


class VendorCursor(BaseModel):
    """A vendor's cursor. Subclasses declare fields (and validators), `source`, `vendor` and, when the shape
    changes, a higher `version` with an `upgrade` from the older ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: ClassVar[str] = ""
    vendor: ClassVar[str] = ""
    version: ClassVar[int] = 1
    invalid_message: ClassVar[str] = "the saved {vendor} sync position is not valid ({reason})"

    @classmethod
    def invalid(cls, reason: str) -> SourceError:
        """The error for a stored cursor that cannot be used."""
        return SourceError(
            ErrorKind.client,
            cls.invalid_message.format(vendor=cls.vendor, reason=reason),
            hint=FULL_SYNC_HINT,
            source=cls.source,
        )

    @classmethod
    def upgrade(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Turn an older version's dict into this one's; without an upgrade path the cursor is refused."""
        raise cls.invalid(f"written as version {from_version}, this version reads {cls.version}")

    @classmethod
    def load(cls, stored: Any) -> Self:
        """The cursor a stored dict stands for; SourceError (kind `client`, hint: full sync) when it cannot be."""
        if not isinstance(stored, Mapping):
            raise cls.invalid(f"expected an object, got {type(stored).__name__}")
        data = dict(stored)
        stored_version = data.pop(VERSION_KEY, 1)
        if isinstance(stored_version, bool) or not isinstance(stored_version, int) or stored_version < 1:
            raise cls.invalid(f"`{VERSION_KEY}` must be a positive whole number")
        if stored_version > cls.version:
            raise SourceError(
                ErrorKind.client,
                f"the saved {cls.vendor} sync position was written by a newer version of Feedback Hub (cursor "
                f"version {stored_version}; this one reads up to {cls.version})",
                hint=f"Update Feedback Hub, or {FULL_SYNC_HINT[0].lower()}{FULL_SYNC_HINT[1:]}",
                source=cls.source,
            )
        if stored_version < cls.version:
            data = cls.upgrade(data, stored_version)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise cls.invalid(_reason(error)) from None

    def dump(self) -> dict[str, Any]:
        """The dict the store keeps (JSON values only); version 1 writes no version key."""
        data = self.model_dump(mode="json")
        if self.version > 1:
            data[VERSION_KEY] = self.version
        return data
