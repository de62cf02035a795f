"""`python -m feedback_sources.sources.spreadsheet import FILE --map content=Body,title=Subject [--db PATH]`.

The same check, lock and sync as the app's Import button; a bad file exits with code 2 and the rows it names.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...integrations.base import ConfigError
from ...store import StoreError, default_db_path
from .errors import SpreadsheetError
from .importer import run_import
from .mapping import FIELDS, ColumnMap, slug
from .settings import SavedImport, load_imports


def parse_map(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        field, sep, column = part.partition("=")
        field = field.strip()
        if not sep or field not in FIELDS or not column.strip():
            raise argparse.ArgumentTypeError(
                f"--map takes field=Column pairs separated by commas; fields: {', '.join(FIELDS)} (got {part!r})")
        mapping[field] = column.strip()
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m feedback_sources.sources.spreadsheet",
                                     description="Import a CSV or XLSX export into the feedback store.")
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("import", help="import (or re-import) a file")
    run.add_argument("file", type=Path)
    run.add_argument("--map", type=parse_map, default=None,
                     help="field=Column pairs, e.g. content=Review,title=Title,date=Date,id=Review ID "
                          "(default: the mapping saved for the dataset)")
    run.add_argument("--dataset", help="name of the import (default: from the file name)")
    run.add_argument("--encoding", default=None, help="auto, utf-8, utf-16, cp1252 or latin-1")
    run.add_argument("--delimiter", default=None, help="',', ';', '\\t' or '|' (default: detected)")
    run.add_argument("--sheet", default=None, help="XLSX sheet name (default: the first)")
    run.add_argument("--day-first", action="store_true", help="03/04/2026 is 3 April")
    run.add_argument("--db", type=Path, default=None, help="store path (default: FEEDBACK_DB or the user data dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    db_path = args.db or default_db_path()
    dataset = args.dataset or slug(args.file.name)
    saved = load_imports(db_path).get(dataset)
    try:
        if args.map is not None:
            mapping = ColumnMap(**args.map, day_first=args.day_first)
        elif saved is not None:
            mapping = saved.mapping.model_copy(update={"day_first": args.day_first or saved.mapping.day_first})
        else:
            print(f"no mapping saved for dataset {dataset!r}: pass --map content=Column,...", file=sys.stderr)
            return 2
        entry = SavedImport(
            dataset=dataset, path=str(args.file.resolve()), mapping=mapping,
            encoding=args.encoding or (saved.encoding if saved else "auto"),
            delimiter=args.delimiter or (saved.delimiter if saved else None),
            sheet=args.sheet or (saved.sheet if saved else None),
        )
        result = run_import(entry, db_path)
    except (SpreadsheetError, ConfigError, StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        hint = getattr(error, "hint", "")
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return 2
    if result.status != "complete":
        print(f"error: {result.errors}", file=sys.stderr)
        return 1
    print(f"{dataset}: {result.fetched} rows read, {result.new} new, {result.updated} updated, "
          f"{result.unchanged} unchanged ({db_path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
