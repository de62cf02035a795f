"""Saved imports: per dataset, the file, its column mapping and how to read it, in a JSON file beside the store.

`<store>.spreadsheet.json` (e.g. `feedback.db.spreadsheet.json`) keeps the settings with the data they produced,
apart for the demo and the real store, with no schema migration. Written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .mapping import ColumnMap, check_dataset
from .reader import ENCODINGS


class SavedImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    path: str = Field(min_length=1)
    mapping: ColumnMap
    encoding: str = "auto"
    delimiter: str | None = None
    sheet: str | None = None

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        return check_dataset(value)

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        if value not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        return value

    def config(self) -> dict[str, Any]:
        """The integration's config for this import."""
        return {"path": self.path, "dataset": self.dataset, "mapping": self.mapping.model_dump_json(),
                "encoding": self.encoding, "delimiter": self.delimiter or "", "sheet": self.sheet or ""}


def settings_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".spreadsheet.json")


def load_imports(db_path: str | Path) -> dict[str, SavedImport]:
    """Every saved import by dataset; an unreadable file reads as none (the PM maps again, nothing is lost)."""
    path = settings_path(db_path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    saved: dict[str, SavedImport] = {}
    for item in (raw.get("imports") or {}).values() if isinstance(raw, dict) else ():
        try:
            entry = SavedImport.model_validate(item)
        except ValidationError:
            continue
        saved[entry.dataset] = entry
    return saved


def save_import(db_path: str | Path, entry: SavedImport) -> Path:
    path = settings_path(db_path)
    imports = load_imports(db_path)
    imports[entry.dataset] = entry
    payload = {"version": 1, "imports": {name: item.model_dump(mode="json") for name, item in sorted(imports.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
