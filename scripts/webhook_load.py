"""Bounded load on the webhook receiver, on 127.0.0.1 only: N signed vendor events from concurrent senders.

The receiver runs in its own process (so sender and receiver do not share one GIL) with its rate limit set far above
the load. Events are split across Zendesk, Intercom and SurveyMonkey; a share of them is delivered twice, as vendors
do when an answer is slow. Afterwards the store is checked: every event logged once, every record (Zendesk and
Intercom events carry the record) stored once, every SurveyMonkey response (id-only events) queued for one fetch.

With `--hold-open N` the deliveries are sent while N half-sent requests hold connections open (a third connect and
send nothing, a third send part of a request head, a third send a whole signed head and part of the body), and the
receiver's file-descriptor limit can be lowered with `--fd-limit` (soft limit, as a default `ulimit -n` would set).
The report then adds what the receiver's connection guard did: its cap, the most connections it held, how many it
closed to make room, and whether asyncio ever failed to accept.

    python scripts/webhook_load.py                 # 10,000 events, 32 senders
    python scripts/webhook_load.py --events 500 --json
    python scripts/webhook_load.py --events 2000 --concurrency 4 --hold-open 1100 --fd-limit 1024

Exit status 0 when every check passes. Prints events/s and the latency percentiles of the deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import multiprocessing.connection
import logging
import random
import secrets
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from feedback_sources.webhooks.server import ConnectionLimits, raise_fd_limit  # noqa: E402
from feedback_sources.sources.intercom.webhooks import intercom_signature  # noqa: E402
from feedback_sources.sources.surveymonkey.webhooks import surveymonkey_signature  # noqa: E402
from feedback_sources.sources.zendesk.webhooks import zendesk_signature  # noqa: E402

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


@dataclass(frozen=True)
class ReceiverOptions:
    """How the receiver process is set up: its limits, and the soft file-descriptor limit it runs under."""

    rate_per_minute: float = RATE_PER_MINUTE
    failed_per_minute: float = 60.0
    body_timeout: float = 10.0
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    fd_limit: int | None = None


class _AcceptErrors(logging.Handler):
    """Counts asyncio's complaints about accepting (EMFILE: "out of system resource") and other loop errors."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _serve(
    db_path: str,
    receiver_secrets: dict[str, dict[str, str]],
    pipe: multiprocessing.connection.Connection,
    options: ReceiverOptions = ReceiverOptions(),
) -> None:
    from feedback_sources.webhooks.app import create_receiver_app
    from feedback_sources.webhooks.server import serving

    if options.fd_limit is not None:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (options.fd_limit, hard))
    # One log line per delivery would measure the terminal, not the receiver.
    logging.getLogger("feedback_sources.webhooks").setLevel(logging.ERROR)
    accept_errors = _AcceptErrors()
    logging.getLogger("asyncio").addHandler(accept_errors)
    app = create_receiver_app(
        db_path,
        receiver_secrets,
        rate_per_minute=options.rate_per_minute,
        failed_per_minute=options.failed_per_minute,
        body_timeout=options.body_timeout,
        heartbeat_interval=60.0,
    )
    with serving(app, host="127.0.0.1", limits=options.limits) as (url, guard):
        pipe.send(url)
        pipe.recv()  # until told to stop
        pipe.send({**guard.stats(), "accept_errors": accept_errors.count})


class ReceiverProcess:
    def __init__(self, db_path: Path, signing: Signing, options: ReceiverOptions = ReceiverOptions()):
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(str(db_path), signing.receiver_secrets(), child, options),
            name="webhook-receiver",
            daemon=True,
        )
        self.stats: dict[str, int] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def __enter__(self) -> str:
        self._process.start()
        if not self._pipe.poll(START_TIMEOUT_SECONDS):
            self._process.kill()
            raise RuntimeError("the receiver process did not start")
        return str(self._pipe.recv())

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._pipe.send("stop")
            if self._pipe.poll(START_TIMEOUT_SECONDS):
                self.stats = self._pipe.recv()
        except (BrokenPipeError, EOFError, OSError):
            pass
        self._process.join(timeout=15)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


# -- half-sent requests ------------------------------------------------------------------------------------------------

HALF_OPEN_KINDS = ("silent", "partial_head", "partial_body")


def half_open_connections(url: str, count: int, *, timeout: float = 10.0) -> list[socket.socket]:
    """`count` connections that each stall mid-request, in turn: silent, part of a head, a head and part of a body.

    The partial bodies go to Intercom with a well-formed (wrong) signature header, so they pass the checks made
    on the head and reach the body read, where a stalled sender costs the receiver the most.
    """
    host, port = url.removeprefix("http://").split(":")
    raise_fd_limit(count + 256)
    opened: list[socket.socket] = []
    try:
        for number in range(count):
            sock = socket.create_connection((host, int(port)), timeout=timeout)
            opened.append(sock)
            kind = HALF_OPEN_KINDS[number % len(HALF_OPEN_KINDS)]
            if kind == "partial_head":
                sock.sendall(b"POST /webhooks/zendesk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            elif kind == "partial_body":
                sock.sendall(
                    b"POST /webhooks/intercom HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"X-Hub-Signature: sha1=" + b"0" * 40 + b"\r\nContent-Length: 1000\r\n\r\n{\"type\": \"notif"
                )
            sock.setblocking(False)
    except BaseException:
        close_all(opened)
        raise
    return opened


def closed_by_server(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the receiver has closed (end of stream or reset), without waiting on any."""
    closed = 0
    for sock in sockets:
        try:
            while sock.recv(65536):  # an answer (a 408) may come before the end of the stream
                pass
            closed += 1
        except BlockingIOError:
            continue
        except OSError:
            closed += 1
    return closed


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


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


def run(
    events: int,
    concurrency: int,
    duplicate_share: float,
    db_path: Path,
    seed: int,
    *,
    hold_open: int = 0,
    options: ReceiverOptions = ReceiverOptions(),
) -> dict[str, Any]:
    signing = Signing.random()
    distinct, order = plan_deliveries(events, duplicate_share, seed)
    receiver = ReceiverProcess(db_path, signing, options)
    held: list[socket.socket] = []
    with receiver as url:
        try:
            held = half_open_connections(url, hold_open)
            latencies, statuses, elapsed = asyncio.run(send_all(url, order, signing, concurrency))
            closed = closed_by_server(held)
        finally:
            close_all(held)
    checks = {"every_delivery_answered_200": statuses == {200: len(order)}, **check_store(db_path, distinct)}
    report: dict[str, Any] = {
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
    if hold_open:
        guard = receiver.stats
        report["held"] = {"connections": hold_open, "closed_by_receiver": closed, "fd_limit": options.fd_limit,
                          "receiver": guard, "limits": asdict(options.limits)}
        checks["receiver_stayed_under_its_connection_cap"] = bool(guard) and guard["most_open"] <= guard["cap"]
        checks["receiver_never_failed_to_accept"] = bool(guard) and guard["accept_errors"] == 0
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="distinct signed events (default 10000)")
    parser.add_argument("--concurrency", type=int, default=32, help="deliveries in flight at once (default 32)")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of events delivered twice (default 0.05)")
    parser.add_argument("--db", type=Path, help="database file (default: a new temporary file)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hold-open", type=int, default=0, help="half-sent requests held open during the load")
    parser.add_argument("--fd-limit", type=int, help="the receiver's soft file-descriptor limit (e.g. 1024)")
    parser.add_argument("--header-timeout", type=float, default=60.0,
                        help="the receiver's header deadline with --hold-open (default 60 s: longer than the run, so "
                             "the held connections stay held and only the cap frees room)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    if args.events < 1 or args.concurrency < 1 or not 0 <= args.duplicates <= 1 or args.hold_open < 0:
        parser.error("--events and --concurrency must be positive, --duplicates between 0 and 1")
    options = ReceiverOptions(fd_limit=args.fd_limit)
    if args.hold_open:
        options = ReceiverOptions(
            fd_limit=args.fd_limit,
            body_timeout=args.header_timeout,
            limits=ConnectionLimits(header_timeout=args.header_timeout, body_timeout=args.header_timeout + 5),
        )

    with tempfile.TemporaryDirectory(prefix="webhook-load-") as scratch:
        db_path = args.db or Path(scratch) / "load.db"
        if db_path.exists():
            parser.error(f"{db_path} exists; the checks need a fresh database")
        report = run(args.events, args.concurrency, args.duplicates, db_path, args.seed,
                     hold_open=args.hold_open, options=options)

    print(
        f"{report['deliveries']} deliveries ({report['events']} events, {report['redeliveries']} redelivered) "
        f"with {report['concurrency']} senders in {report['seconds']:.2f}s: {report['events_per_second']:.0f} events/s, "
        f"p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms, max {report['max_ms']:.1f} ms"
    )
    if "held" in report:
        held = report["held"]
        guard = held["receiver"]
        print(
            f"while {held['connections']} half-sent requests were held (fd limit {held['fd_limit'] or 'unchanged'}): "
            f"cap {guard.get('cap')}, most open {guard.get('most_open')}, closed for room {guard.get('evicted')}, "
            f"refused {guard.get('refused')}, accept errors {guard.get('accept_errors')}"
        )
    for name, passed in report["checks"].items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name.replace('_', ' ')}")
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
