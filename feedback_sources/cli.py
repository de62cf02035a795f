"""The command line: sync, test connections, export, manage credentials, serve webhooks, status, check, backup."""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .sources import source_names

if TYPE_CHECKING:
    from .integrations.base import ConfigError
    from .search import SearchSyntaxError
    from .store import (
        Filters,
        Store,
        StoreError,
        check_copy,
        check_store,
        damaged,
        default_db_path,
        location_problem,
        store_error_from,
    )
    from .workspace import Workspace, demo_workspace, real_workspace

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Another sync holds the store (sysexits' EX_TEMPFAIL: try again later), so cron can tell it from a failure.
EXIT_BUSY = 75


# Bound by _import_runtime once a command is chosen (module: names); a new top-level name the commands use goes here.
_RUNTIME_IMPORTS: dict[str, tuple[str, ...]] = {
    ".integrations.base": ("ConfigError",),
    ".search": ("SearchSyntaxError",),
    ".store": ("Filters", "Store", "StoreError", "check_copy", "check_store", "damaged", "default_db_path",
               "location_problem", "store_error_from"),
    ".workspace": ("Workspace", "demo_workspace", "real_workspace"),
}
_RUNTIME_NAMES = frozenset(name for names in _RUNTIME_IMPORTS.values() for name in names)


def _import_runtime() -> None:
    """Bind the store, workspace and integration names the commands use, once a command is chosen.

    `--help` and a usage error then cost no more than argparse: the integrations pull in httpx and pydantic, and a
    cron'd sync starts without paying for what it never calls. Module attribute access (`cli.Store`) loads them too.
    """
    import importlib

    for module_name, names in _RUNTIME_IMPORTS.items():
        module = importlib.import_module(module_name, __package__)
        globals().update({name: getattr(module, name) for name in names})


def __getattr__(name: str) -> Any:
    if name in _RUNTIME_NAMES:
        _import_runtime()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _add_workspace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, help="database file (default: FEEDBACK_DB or the user data directory)")
    parser.add_argument("--demo", action="store_true", help="use the built-in demo workspace (vendor emulator)")
    parser.add_argument("--debug", action="store_true", help="log each request (secrets are redacted)")


def _add_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", choices=source_names(), help="repeat for several")
    parser.add_argument("--tier", action="append", help="enterprise, business, professional, free or unknown")
    parser.add_argument("--category", action="append", help="bug_report, feature_request, support, ...")
    parser.add_argument("--since", type=_parse_day, help="first day (YYYY-MM-DD), inclusive")
    parser.add_argument("--until", type=_parse_day, help="last day (YYYY-MM-DD), inclusive")
    parser.add_argument("--search", default="", help='full-text search: words, "phrases", OR, -exclude, prefix*')
    parser.add_argument("--tag", help="only records with this tag")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feedback-hub", description="Feedback Hub command line")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("app", help="start the Streamlit app (demo mode when no source is configured); "
                        "arguments after `app` go to `streamlit run`", add_help=False)

    sync = commands.add_parser("sync", help="pull feedback into the local store")
    sync.add_argument("--source", action="append", choices=source_names(), help="repeat for several (default: all configured)")
    window = sync.add_mutually_exclusive_group()
    window.add_argument("--since", type=_parse_day, help="re-pull records created from this day (YYYY-MM-DD)")
    window.add_argument("--days", type=int, help="re-pull the last N days")
    sync.add_argument("--until", type=_parse_day, help="last day of a bounded range (inclusive)")
    sync.add_argument("--full", action="store_true", help="ignore the saved position and pull the whole history")
    sync.add_argument("--rate-limit-wait", type=float, metavar="MINUTES",
                      help="how long one request may keep waiting on a vendor's rate limit before the source gives "
                      "up (default 15, or FEEDBACK_MAX_RATE_LIMIT_WAIT in seconds)")
    _add_workspace_options(sync)

    test = commands.add_parser("test-connection", help="check credentials and say what to fix")
    test.add_argument("--source", action="append", choices=source_names())
    _add_workspace_options(test)

    export = commands.add_parser("export", help="write the filtered records as CSV")
    export.add_argument("--csv", required=True, type=Path, help="output file")
    export.add_argument("--columns", help="comma-separated columns (default: all)")
    _add_filter_options(export)
    _add_workspace_options(export)

    credentials = commands.add_parser("credentials", help="store or remove credentials in the OS keyring")
    actions = credentials.add_subparsers(dest="action", required=True)
    set_ = actions.add_parser(
        "set",
        help="prompt for a source's fields and save them in the keyring",
        description="Prompts for each field (tokens without echo). When standard input is not a terminal the "
        "values are read from it instead, one per line in prompt order or as FIELD=value lines; "
        "never from arguments, which would end up in the shell history.",
    )
    set_.add_argument("source", choices=source_names())
    set_.add_argument("--stdin", action="store_true", help="read the values from standard input even from a terminal")
    set_.add_argument("--dotenv", action="store_true",
                      help="write to ./.env (mode 0600, plain text) instead of the keyring: for machines without one")
    delete = actions.add_parser("delete", help="remove a source's fields from the keyring")
    delete.add_argument("source", choices=source_names())
    actions.add_parser("status", help="where each field comes from (never its value)")

    status = commands.add_parser(
        "status", help="per source: freshness, completeness against the vendor's total, gaps, last run, budget"
    )
    status.add_argument("--stale-after", type=float, default=24.0, metavar="HOURS",
                        help="call a source stale when its last successful sync is older than this (default 24)")
    status.add_argument("--min-gap-median", type=float, default=5.0, metavar="RECORDS",
                        help="an empty day is a gap when the days around it have at least this many records "
                        "(default 5)")
    status.add_argument("--json", action="store_true", help="print the facts as JSON")
    _add_workspace_options(status)

    found = commands.add_parser("themes", help="find themes in the customers' words, or list them")
    found.add_argument("action", choices=("find", "list"), help="find: group every record again; list: show them")
    _add_workspace_options(found)

    webhooks = commands.add_parser("serve-webhooks", help="run the webhook receiver")
    webhooks.add_argument("--host", default="127.0.0.1")
    webhooks.add_argument("--port", type=int, default=8787)
    _add_workspace_options(webhooks)

    check = commands.add_parser(
        "check", help="full check of the store: SQLite integrity, foreign keys, the full-text index; exit 1 if damaged"
    )
    _add_workspace_options(check)

    backup = commands.add_parser(
        "backup", help="a consistent copy of the store (safe while a sync runs); default: a dated file beside it"
    )
    backup.add_argument("path", nargs="?", type=Path,
                        help="where to write the copy (default: <store>.YYYYMMDD-HHMMSS.bak beside the store)")
    _add_workspace_options(backup)
    return parser


def _workspace(args: argparse.Namespace) -> Workspace:
    return demo_workspace(args.db) if args.demo else real_workspace(db_path=args.db)


def _configure_logging(args: argparse.Namespace, workspace: Workspace | None = None) -> None:
    from .logging_setup import configure_logging

    secrets: list[str] = []
    if workspace is not None and not workspace.demo:
        from .credentials import CredentialStore

        secrets = CredentialStore().secret_values()
    configure_logging(debug=getattr(args, "debug", False), secrets=secrets)


def report_store_error(error: StoreError, err: TextIO) -> int:
    """What is wrong with the store and what to do, on two lines, without a traceback."""
    print(f"error: {error.message}", file=err)
    if error.hint:
        print(f"what to do: {error.hint}", file=err)
    return EXIT_FAILED


@contextmanager
def open_store(workspace: Workspace, err: TextIO) -> Iterator[Store]:
    """The workspace's store, saying so when opening it backed it up before a schema migration."""
    with workspace.store() as store:
        if store.migration_backup is not None:
            print(f"The store needed a schema migration; the store as it was is backed up to {store.migration_backup}",
                  file=err)
        yield store


class ProgressPrinter:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.interactive = stream.isatty()

    def __call__(self, progress: Any) -> None:
        waited = f", waited {progress.wait_seconds:.1f}s on limits" if progress.wait_seconds >= 0.05 else ""
        total = f"/{progress.vendor_total}" if progress.vendor_total else ""
        line = (
            f"{progress.source:<13} {progress.status:<9} {progress.pages} pages, {progress.fetched}{total} records "
            f"({progress.new} new, {progress.updated} updated){waited}"
        )
        if progress.message:
            line += f" — {progress.message}"
        print(line, file=self.stream, flush=True)


def _cancel_on_sigterm(cancel: Any) -> None:
    """SIGTERM (systemd stopping the service, `kill`) ends the sync at the next page boundary, recorded as cancelled."""
    import signal

    try:
        signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    except ValueError:  # not the main thread (the CLI called from a test or a tool): no signal handling there
        pass


def _window_label(args: argparse.Namespace) -> str:
    """The window in the words the app's Sync page uses, so a CLI run reads the same there."""
    if args.since:
        return f"{args.since.isoformat()} to {args.until.isoformat()}" if args.until else f"since {args.since.isoformat()}"
    if args.days is not None:
        return f"the last {args.days} days"
    return "the whole history" if args.full else "since the last sync"


def cmd_sync(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .integrations.http import RetryPolicy
    from .ranges import RangeError, sync_range
    from .rules_store import rules_at
    from .sync import sync

    # Checked before anything is opened: a range that cannot be meant changes nothing.
    try:
        start, end = sync_range(since=args.since, days=args.days, until=args.until, now=datetime.now(timezone.utc))
    except RangeError as error:
        print(f"--{error.field}: {error.message}", file=err)
        return EXIT_USAGE
    options: dict[str, Any] = {}
    try:
        if args.rate_limit_wait is not None:
            if not 0 < args.rate_limit_wait <= 24 * 60:
                raise ValueError("--rate-limit-wait must be more than 0 and at most 1440 minutes (a day)")
            options["retry_policy"] = RetryPolicy.from_env(max_rate_limit_wait=args.rate_limit_wait * 60)
        else:
            RetryPolicy.from_env()  # a bad FEEDBACK_* setting is reported here, not from inside the sync
    except ValueError as error:
        print(str(error), file=err)
        return EXIT_USAGE
    workspace = _workspace(args)
    _configure_logging(args, workspace)
    sources = args.source or workspace.configured_sources()
    if not sources:
        print(
            f"No source is configured. Run `feedback-hub credentials set SOURCE` (SOURCE one of "
            f"{', '.join(source_names())}), set the environment variables from the README, or try `--demo`.",
            file=err,
        )
        return EXIT_USAGE
    try:
        with open_store(workspace, err):
            pass  # a damaged store stops here, before anything is fetched; a migration is backed up and announced
        # Records are categorized with the Rules page's current version (the package's defaults until one is saved).
        integrations = workspace.integrations(sources, rules=rules_at(workspace.db_path), **options)
    except ConfigError as error:
        print(f"{error}. Set them with `python -m feedback_sources credentials set {error.source}`.", file=err)
        return EXIT_USAGE
    except StoreError as error:
        return report_store_error(error, err)
    from .jobs import JobSpec, SyncBusy, exclusive_sync

    spec = JobSpec(sources=tuple(sources), start=start, end=end, incremental=not args.full, demo=workspace.demo,
                   label=_window_label(args))
    printer = ProgressPrinter(err)
    try:
        # One sync per store, shared with the app and cron: the app shows this run and can cancel it.
        with exclusive_sync(workspace.db_path, spec, origin="cli") as job, workspace.store() as store:
            _cancel_on_sigterm(job.cancel)
            print(f"Syncing {', '.join(sources)} into {workspace.db_path}", file=err)

            def on_progress(progress: Any) -> None:
                job.on_progress(progress)
                printer(progress)

            results = sync(store, integrations, start=start, end=end, incremental=not args.full,
                           on_progress=on_progress, should_stop=job.should_stop, run_group=job.run_group)
            job.record([result.as_dict() for result in results.values()])
    except SyncBusy as busy:
        print(str(busy), file=err)
        return EXIT_BUSY
    except StoreError as error:
        return report_store_error(error, err)
    failed = False
    print(f"{'source':<13} {'status':<9} {'fetched':>8} {'new':>7} {'updated':>8} {'removed':>8} {'requests':>8} "
          f"{'seconds':>8}", file=out)
    for result in results.values():
        print(
            f"{result.source:<13} {result.status:<9} {result.fetched:>8} {result.new:>7} {result.updated:>8} "
            f"{result.removed:>8} {result.requests:>8} {result.duration_seconds:>8.1f}",
            file=out,
        )
        if result.errors:
            failed = True
            print(f"  error: {result.errors}", file=out)
        if result.status == "cancelled":
            print("  cancelled: the next sync continues from the last stored page", file=out)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_test_connection(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    workspace = _workspace(args)
    _configure_logging(args, workspace)
    sources = args.source or list(source_names())
    failed = False
    for source in sources:
        result = workspace.test_connection(source)
        mark = "ok  " if result.ok else "FAIL"
        print(f"{mark} {source}: {result.message}", file=out)
        if not result.ok:
            failed = True
            print(f"     diagnosis: {result.kind}. {result.hint}", file=out)
    return EXIT_FAILED if failed else EXIT_OK


def filters_from_args(args: argparse.Namespace) -> Filters:
    return Filters(
        sources=tuple(args.source or ()),
        tiers=tuple(args.tier or ()),
        categories=tuple(args.category or ()),
        start=args.since,
        end=args.until,
        text=args.search or "",
        tag=args.tag,
    )


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .export import export_csv

    workspace = _workspace(args)
    filters = filters_from_args(args)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    try:
        with open_store(workspace, err) as store:
            count = export_csv(store, filters, args.csv, columns=columns)
    except StoreError as error:
        return report_store_error(error, err)
    except (SearchSyntaxError, ValueError) as error:
        print(f"export failed: {error}", file=err)
        return EXIT_USAGE
    except OSError as error:  # permissions, a full disk: say which file, without a traceback
        print(f"export failed: could not write {args.csv}: {error.strerror or error}", file=err)
        return EXIT_FAILED
    print(f"Wrote {count} records to {args.csv}", file=out)
    return EXIT_OK


def cmd_credentials(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .credentials import CredentialStore, KeyringUnavailable, parse_piped_values, prompted_fields

    credentials = CredentialStore()
    status = credentials.keyring_status()
    if args.action == "status":
        print(f"keyring: {'usable' if status.usable else 'NOT usable'} ({status.backend}) {status.message}", file=out)
        for source in source_names():
            origins = credentials.field_origins(source)
            listed = ", ".join(f"{field}={origin}" for field, origin in origins.items())
            state = "configured" if credentials.is_configured(source) else "incomplete"
            print(f"{source:<13} {state:<11} {listed}", file=out)
        return EXIT_OK
    if args.action == "delete":
        try:
            credentials.delete(args.source)
        except KeyringUnavailable as error:
            print(str(error), file=err)
            return EXIT_FAILED
        print(f"Removed {args.source} credentials from the keyring.", file=out)
        return EXIT_OK
    if args.stdin or not sys.stdin.isatty():
        try:
            values = parse_piped_values(args.source, sys.stdin.read())
        except ValueError as error:
            print(f"Not saved: {error}", file=err)
            return EXIT_USAGE
    else:
        values = {}
        for spec in prompted_fields(args.source):
            hint = f" ({'/'.join(spec.choices)})" if spec.choices else ""
            prompt = f"{spec.label}{hint}{'' if spec.required else ' [optional]'}: "
            value = getpass.getpass(prompt) if spec.secret else input(prompt)
            if value.strip():
                values[spec.name] = value.strip()
    if not values:
        print(f"Not saved: no value given for {args.source}.", file=err)
        return EXIT_USAGE
    try:
        if args.dotenv:
            where = f"the owner-only file {credentials.write_dotenv(args.source, values)}"
        else:
            credentials.set(args.source, values)
            where = "the keyring"
    except KeyringUnavailable as error:
        print(f"{error} To write a .env file readable only by you instead, add --dotenv.", file=err)
        return EXIT_FAILED
    except ValueError as error:
        print(f"Not saved: {error}", file=err)
        return EXIT_USAGE
    print(f"Saved {', '.join(values)} for {args.source} in {where}.", file=out)
    return EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import dataclasses
    import json

    from .health import health_lines, health_report

    if args.stale_after <= 0:
        print("--stale-after must be a positive number of hours", file=err)
        return EXIT_USAGE
    workspace = _workspace(args)
    now = datetime.now(timezone.utc)
    try:
        with open_store(workspace, err) as store:
            report = health_report(store, source_names(), now=now, stale_after=timedelta(hours=args.stale_after),
                                   min_gap_median=args.min_gap_median)
            schema = store.schema_version
            removed = store.removal_counts()
    except StoreError as error:
        return report_store_error(error, err)
    configured = {source: workspace.is_configured(source) for source in source_names()}
    if args.json:
        facts = [
            {**dataclasses.asdict(health), "status": health.status, "configured": configured.get(health.source, False),
             "removed": removed.get(health.source, {})}
            for health in report
        ]
        print(json.dumps({"store": str(workspace.db_path), "schema": schema, "sources": facts}, default=str, indent=2),
              file=out)
        return EXIT_OK
    print(f"store: {workspace.db_path} (schema {schema})", file=out)
    for health in report:
        state = "configured" if configured.get(health.source) else "not configured"
        lines = health_lines(health)
        print(f"{lines[0]} ({state})", file=out)
        for line in lines[1:]:
            print(line, file=out)
        gone = removed.get(health.source)
        if gone:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(gone.items()))
            print(f"  removed by the vendor and forgotten here: {reasons}", file=out)
    return EXIT_OK


def cmd_themes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import themes

    workspace = _workspace(args)
    try:
        with workspace.store() as store:
            if args.action == "find":
                def progress(fraction: float, message: str) -> None:
                    print(f"{fraction:4.0%} {message}", file=err)

                report = themes.recompute(store, progress=progress)
                print(f"{report.themes} themes from {report.records:,} records in {report.seconds:.1f} s "
                      f"(peak memory {report.peak_rss_mb:.0f} MB)", file=out)
            found = themes.themes(store)
            counts = store.theme_record_counts()
    except themes.ThemeError as error:
        print(str(error), file=err)
        return EXIT_FAILED
    except StoreError as error:
        print(str(error), file=err)
        return EXIT_FAILED
    if not found:
        print("No themes yet: run `themes find` after a sync.", file=out)
    for info in sorted(found.values(), key=lambda i: (not i.pinned, -counts.get(i.id, 0))):
        flags = "".join((" [pinned]" if info.pinned else "", " [hidden]" if info.hidden else ""))
        print(f"{counts.get(info.id, 0):>7,}  {info.name}{flags}  ({info.defining_words})", file=out)
    return EXIT_OK


def cmd_serve_webhooks(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        from .webhooks.server import serve
    except ImportError:
        print("The webhook receiver is not available in this build.", file=err)
        return EXIT_FAILED
    workspace = _workspace(args)
    _configure_logging(args, workspace)
    try:
        with open_store(workspace, err):
            pass  # refuse to start on a damaged store rather than fail on the first delivery
    except StoreError as error:
        return report_store_error(error, err)
    return serve(workspace, host=args.host, port=args.port, out=out, err=err)


def _size(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB" if size >= 100_000 else f"{size:,} bytes"


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Everything SQLite can check, and the verdict; writes nothing to the store."""
    workspace = _workspace(args)
    try:
        report = check_store(workspace.db_path)
    except StoreError as error:
        return report_store_error(error, err)
    facts = [_size(report.size)]
    if report.schema is not None:
        facts.insert(0, f"schema {report.schema}")
    if report.records is not None:
        facts.append(f"{report.records:,} records")
    print(f"store: {report.path} ({', '.join(facts)})", file=out)
    for part in report.parts:
        if part.problems:
            print(f"  {part.name:<16} DAMAGED: {len(part.problems)} problem(s)", file=out)
            for problem in part.problems[:10]:
                print(f"    - {problem}", file=out)
            if len(part.problems) > 10:
                print(f"    ... and {len(part.problems) - 10} more", file=out)
        elif part.skipped:
            print(f"  {part.name:<16} not checked: {part.skipped}", file=out)
        else:
            print(f"  {part.name:<16} ok", file=out)
    if report.damaged:
        name, problem = next((part.name, p) for part in report.parts for p in part.problems)
        print(f"verdict: DAMAGED ({report.seconds:.1f} s)", file=out)
        # The header's problems are this project's own reading; the other parts are what SQLite's checks found.
        said = problem if name == "header" else f"SQLite's {name} check found {problem}"
        return report_store_error(damaged(report.path, said), out)
    unusable = location_problem(Path(report.path))
    if unusable is not None:
        # Sound as far as it could be read, but the app and a sync could not write to it.
        print(f"verdict: no damage found ({report.seconds:.1f} s), but the store cannot be used as it is", file=out)
        return report_store_error(unusable, out)
    if not report.complete:
        print(f"verdict: no damage found, but not every check could run ({report.seconds:.1f} s)", file=out)
        return EXIT_OK
    print(f"verdict: OK, the store is sound ({report.seconds:.1f} s)", file=out)
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """A consistent copy through SQLite's online backup API, then a quick_check of the copy."""
    workspace = _workspace(args)
    source = Path(workspace.db_path).expanduser()
    if not source.exists():
        print(f"error: there is no store at {source} to back up.", file=err)
        return EXIT_FAILED
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    target = args.path.expanduser() if args.path else source.with_name(f"{source.name}.{stamp}.bak")
    if target.is_dir():
        target = target / f"{source.name}.{stamp}.bak"
    if target.exists():
        print(f"error: {target} already exists; choose another path or remove it first.", file=err)
        return EXIT_USAGE
    try:
        with open_store(workspace, err) as store:
            store.backup(target)
    except StoreError as error:
        return report_store_error(error, err)
    except OSError as error:
        print(f"error: could not write {target}: {error.strerror or error}", file=err)
        return EXIT_FAILED
    verdict, records = check_copy(target)
    if verdict != "ok":
        print(f"error: the copy at {target} fails SQLite's quick_check: {verdict}", file=err)
        return EXIT_FAILED
    print(f"Backed up {records:,} records to {target} ({_size(target.stat().st_size)}, quick_check ok). "
          f"To restore it, stop the app and copy it over {source}.", file=out)
    return EXIT_OK


COMMANDS = {
    "sync": cmd_sync,
    "test-connection": cmd_test_connection,
    "export": cmd_export,
    "credentials": cmd_credentials,
    "status": cmd_status,
    "themes": cmd_themes,
    "serve-webhooks": cmd_serve_webhooks,
    "check": cmd_check,
    "backup": cmd_backup,
}


def app_script() -> Path:
    """The Streamlit entry point: beside the package in a checkout, a top-level module once installed."""
    beside = Path(__file__).resolve().parent.parent / "app.py"
    if beside.is_file():
        return beside
    import importlib.util

    found = importlib.util.find_spec("app")
    if found is None or found.origin is None:
        raise SystemExit("error: the app is not installed with this package (app.py not found)")
    return Path(found.origin)


def app_settings_flags(script: Path) -> list[str]:
    """The app's Streamlit settings (app_pages/streamlit_config.toml) as `--section.key value` flags.

    Streamlit reads `.streamlit/config.toml` only from the working directory or the home folder; an installed app is
    started from anywhere, and must still listen on 127.0.0.1 only and keep tracebacks out of the page.
    """
    import tomllib

    path = script.parent / "app_pages" / "streamlit_config.toml"
    if not path.is_file():
        return []
    flags: list[str] = []
    for section, values in tomllib.loads(path.read_text(encoding="utf-8")).items():
        for key, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags += [f"--{section}.{key}", text]
    return flags


def run_app(arguments: Sequence[str]) -> int:
    """`feedback-hub app`: `streamlit run` on the app with its settings; flags given after `app` win."""
    import os

    script = app_script()
    command = [sys.executable, "-m", "streamlit", "run", str(script), *app_settings_flags(script), *arguments]
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


def entry() -> None:
    """The `feedback-hub` console script."""
    arguments = sys.argv[1:]
    if arguments[:1] == ["app"]:
        sys.exit(run_app(arguments[1:]))
    sys.exit(main(arguments))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["app"]:
        return run_app(argv[1:])
    args = build_parser().parse_args(argv)
    _import_runtime()
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return COMMANDS[args.command](args, out, err)
    except StoreError as error:
        return report_store_error(error, err)
    except sqlite3.DatabaseError as error:
        # Damage met in the middle of a command (a page beyond what the open check reads): the same message.
        typed = store_error_from(error, getattr(args, "db", None) or default_db_path(getattr(args, "demo", False)))
        if typed is None:
            raise
        return report_store_error(typed, err)
    except ValueError as error:
        from .credentials import DotenvError  # imported here: the CLI loads the keyring only when a command needs it

        if not isinstance(error, DotenvError):
            raise
        # Every command reads credentials: say which file and line to fix instead of showing a traceback.
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted: the next sync resumes from the last saved page.", file=err)
        return 130
