"""Bounded load on the webhook receiver, on 127.0.0.1 only: N signed vendor events from concurrent senders.

The receiver runs in its own process (so sender and receiver do not share one GIL) with its rate limit set far above
the load. Events are split across Zendesk, Intercom and SurveyMonkey; a share of them is delivered twice, as vendors
do when an answer is slow. Afterwards the store is checked: every event logged once, every record (Zendesk and
Intercom events carry the record) stored once, every SurveyMonkey response (id-only events) queued for one fetch.

    python scripts/webhook_load.py                 # 10,000 events, 32 senders
    python scripts/webhook_load.py --events 500 --json

Exit status 0 when every check passes. Prints events/s and the latency percentiles of the deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import multiprocessing.connection
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from feedback_sources.webhooks.signatures import (  # noqa: E402
    intercom_signature,
    surveymonkey_signature,
    zendesk_signature,
)

SOURCES = ("zendesk", "intercom", "surveymonkey")
# Far above any load this script makes: the limiter must not be what the figures measure.
RATE_PER_MINUTE = 1_000_000_000
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Delivery:
    source: str
    event_id: str
    record_id: str
    body: bytes


@dataclass(frozen=True)
class Signing:
    zendesk_secret: str
    intercom_secret: str
    surveymonkey_client_id: str
    surveymonkey_client_secret: str

    @classmethod
    def random(cls) -> Signing:
        return cls(*(f"load-{secrets.token_hex(12)}" for _ in range(4)))

    def receiver_secrets(self) -> dict[str, dict[str, str]]:
        return {
            "zendesk": {"webhook_secret": self.zendesk_secret, "subdomain": "loadtest"},
            "intercom": {"client_secret": self.intercom_secret},
            "surveymonkey": {"client_id": self.surveymonkey_client_id, "client_secret": self.surveymonkey_client_secret},
        }

    def headers(self, source: str, body: bytes) -> dict[str, str]:
        if source == "zendesk":
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "Content-Type": "application/json",
                "X-Zendesk-Webhook-Signature": zendesk_signature(self.zendesk_secret, stamp, body),
                "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            }
        if source == "intercom":
            return {"Content-Type": "application/json", "X-Hub-Signature": intercom_signature(self.intercom_secret, body)}
        return {
            "Content-Type": "application/json",
            "Sm-Apikey": self.surveymonkey_client_id,
            "Sm-Signature": surveymonkey_signature(self.surveymonkey_client_id, self.surveymonkey_client_secret, body),
        }


# -- the events --------------------------------------------------------------------------------------------------------


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def zendesk_event(number: int, now: int) -> Delivery:
    ticket_id = str(1_000_000 + number)
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload = {
        "type": "zen:event-type:ticket.created",
        "id": f"load-zd-{number}",
        "account_id": 1,
        "time": stamp,
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {
            "id": ticket_id,
            "subject": f"Load ticket {number}",
            "description": f"The export button fails for order {number}.",
            "status": "OPEN",
            "priority": "NORMAL",
            "type": "PROBLEM",
            "tags": ["load"],
            "requester_id": str(5_000_000 + number % 97),
            "created_at": stamp,
            "updated_at": stamp,
        },
        "event": {},
    }
    return Delivery("zendesk", payload["id"], ticket_id, _encode(payload))


def intercom_event(number: int, now: int) -> Delivery:
    conversation_id = str(2_000_000 + number)
    payload = {
        "type": "notification_event",
        "id": f"load-ic-{number}",
        "topic": "conversation.user.created",
        "app_id": "loadapp",
        "created_at": now,
        "delivery_attempts": 1,
        "data": {
            "type": "notification_event_data",
            "item": {
                "type": "conversation",
                "id": conversation_id,
                "created_at": now,
                "updated_at": now,
                "state": "open",
                "source": {
                    "type": "conversation",
                    "subject": "",
                    "body": f"<p>Please add a dark mode ({number}).</p>",
                    "author": {"type": "user", "id": f"contact-{number % 89}", "name": "Load Tester",
                               "email": f"load{number % 89}@example.com"},
                },
                "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": f"contact-{number % 89}"}]},
                "tags": {"type": "tag.list", "tags": []},
                "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
            },
        },
    }
    return Delivery("intercom", payload["id"], conversation_id, _encode(payload))


def surveymonkey_event(number: int, now: int) -> Delivery:
    response_id = str(3_000_000 + number)
    payload = {
        "name": "Feedback hub",
        "filter_type": "survey",
        "filter_id": "4001",
        "event_type": "response_completed",
        "event_id": f"load-sm-{number}",
        "object_type": "response",
        "object_id": response_id,
        "event_datetime": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(),
        "resources": {"respondent_id": response_id, "recipient_id": "0", "survey_id": "4001", "collector_id": "3001",
                      "user_id": "2001"},
    }
    return Delivery("surveymonkey", payload["event_id"], response_id, _encode(payload))


MAKERS = {"zendesk": zendesk_event, "intercom": intercom_event, "surveymonkey": surveymonkey_event}


def plan_deliveries(events: int, duplicate_share: float, seed: int) -> tuple[list[Delivery], list[Delivery]]:
    """The distinct events, and the delivery order: every event once plus a share sent again later."""
    now = int(time.time())
    distinct = [MAKERS[SOURCES[number % len(SOURCES)]](number, now) for number in range(events)]
    rng = random.Random(seed)
    order = list(distinct)
    for delivery in rng.sample(distinct, round(events * duplicate_share)):
        # A redelivery comes after the original, somewhere later in the stream.
        position = order.index(delivery)
        order.insert(rng.randint(position + 1, len(order)), delivery)
    return distinct, order


# -- the receiver, in its own process ----------------------------------------------------------------------------------


def _serve(db_path: str, receiver_secrets: dict[str, dict[str, str]], pipe: multiprocessing.connection.Connection) -> None:
    import logging

    from feedback_sources.webhooks.app import create_receiver_app
    from feedback_sources.webhooks.server import running_receiver

    # One log line per delivery would measure the terminal, not the receiver.
    logging.getLogger("feedback_sources.webhooks").setLevel(logging.WARNING)
    app = create_receiver_app(db_path, receiver_secrets, rate_per_minute=RATE_PER_MINUTE, heartbeat_interval=60.0)
    with running_receiver(app, host="127.0.0.1") as url:
        pipe.send(url)
        pipe.recv()  # until told to stop


class ReceiverProcess:
    def __init__(self, db_path: Path, signing: Signing):
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(str(db_path), signing.receiver_secrets(), child), name="webhook-receiver", daemon=True
        )

    def __enter__(self) -> str:
        self._process.start()
        if not self._pipe.poll(START_TIMEOUT_SECONDS):
            self._process.kill()
            raise RuntimeError("the receiver process did not start")
        return str(self._pipe.recv())

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pipe.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# -- sending -----------------------------------------------------------------------------------------------------------


async def send_all(url: str, order: list[Delivery], signing: Signing, concurrency: int) -> tuple[list[float], dict[int, int], float]:
    """POST every delivery with at most `concurrency` in flight; returns latencies (ms), status counts, seconds."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    for delivery in order:
        queue.put_nowait(delivery)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def sender() -> None:
            while True:
                try:
                    delivery = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                headers = signing.headers(delivery.source, delivery.body)
                started = time.perf_counter()
                try:
                    response = await client.post(f"/webhooks/{delivery.source}", content=delivery.body, headers=headers)
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


# -- checking the store ------------------------------------------------------------------------------------------------


def check_store(db_path: Path, distinct: list[Delivery]) -> dict[str, bool]:
    conn = sqlite3.connect(db_path)
    try:
        events = [tuple(row) for row in conn.execute("SELECT source, event_id FROM webhook_events")]
        records = [tuple(row) for row in conn.execute("SELECT source, source_id FROM feedback")]
        fetches = [tuple(row) for row in conn.execute("SELECT source, object_id FROM webhook_fetches")]
    finally:
        conn.close()
    expected_events = sorted((d.source, d.event_id) for d in distinct)
    expected_records = sorted((d.source, d.record_id) for d in distinct if d.source != "surveymonkey")
    expected_fetches = sorted((d.source, d.record_id) for d in distinct if d.source == "surveymonkey")
    # Sorted lists of tuples: a duplicate row would show as an extra element.
    return {
        "each_event_logged_once": sorted(events) == expected_events,
        "each_record_stored_once": sorted(records) == expected_records,
        "each_fetch_queued_once": sorted(fetches) == expected_fetches,
    }


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value at or above `fraction` of the sample."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


def run(events: int, concurrency: int, duplicate_share: float, db_path: Path, seed: int) -> dict[str, Any]:
    signing = Signing.random()
    distinct, order = plan_deliveries(events, duplicate_share, seed)
    with ReceiverProcess(db_path, signing) as url:
        latencies, statuses, elapsed = asyncio.run(send_all(url, order, signing, concurrency))
    checks = {"every_delivery_answered_200": statuses == {200: len(order)}, **check_store(db_path, distinct)}
    return {
        "events": events,
        "deliveries": len(order),
        "redeliveries": len(order) - events,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "events_per_second": round(len(order) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2) if latencies else 0.0,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "checks": checks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="distinct signed events (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="deliveries in flight at once (default 32)")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of events delivered twice (default 0.05)")
    parser.add_argument("--db", type=Path, help="database file (default: a new temporary file)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    if args.events < 1 or args.concurrency < 1 or not 0 <= args.duplicates <= 1:
        parser.error("--events and --concurrency must be positive, --duplicates between 0 and 1")

    with tempfile.TemporaryDirectory(prefix="webhook-load-") as scratch:
        db_path = args.db or Path(scratch) / "load.db"
        if db_path.exists():
            parser.error(f"{db_path} exists; the checks need a fresh database")
        report = run(args.events, args.concurrency, args.duplicates, db_path, args.seed)

    print(
        f"{report['deliveries']} deliveries ({report['events']} events, {report['redeliveries']} redelivered) "
        f"with {report['concurrency']} senders in {report['seconds']:.2f}s: {report['events_per_second']:.0f} events/s, "
        f"p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms, max {report['max_ms']:.1f} ms"
    )
    for name, passed in report["checks"].items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name.replace('_', ' ')}")
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
