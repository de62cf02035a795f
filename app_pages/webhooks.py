"""Webhooks: run the receiver, register it with each vendor, and watch events arrive.

The receiver is its own process (`python -m feedback_sources serve-webhooks`), started and stopped from here and
found again through the heartbeat it writes into the workspace's database, so it keeps running while pages change
and can be stopped from a later session. In the demo workspace the built-in emulator plays the vendors: it accepts
registrations and can send signed test events to the running receiver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd
import streamlit as st

from feedback_sources.credentials import KeyringUnavailable
from feedback_sources.integrations.base import ConfigError, WebhookSetupRequired
from feedback_sources.integrations.http import SourceError
from feedback_sources.store import Store
from feedback_sources.ui.diagnosis import diagnosis_title
from feedback_sources.ui.labels import human_label
from feedback_sources.ui.text import md_escape, parse_timestamp, readable_datetime
from feedback_sources.webhooks import recent_events, supervisor
from feedback_sources.webhooks.handler import get_handler, webhook_handlers
from feedback_sources.workspace import demo_emulator
from app_pages._shared import DEMO, credential_store, current_mode, db_path, flash, show_flashes, source_label, workspace

DEFAULT_PORT = 8787
PORT_KEY = "webhooks_port"
ADDRESS_KEY = "webhooks_public_address"
SUGGESTED_ADDRESS_KEY = "webhooks_suggested_address"
HELP_KEY_PREFIX = "webhooks_help_"

EVENT_COLUMNS = {
    "received_at": st.column_config.TextColumn("Received"),
    "source": st.column_config.TextColumn("Source"),
    "event_type": st.column_config.TextColumn("Event"),
    "verdict": st.column_config.TextColumn("Verdict"),
    "record_id": st.column_config.TextColumn("Record"),
    "deliveries": st.column_config.NumberColumn("Deliveries"),
    "latency_ms": st.column_config.NumberColumn("Latency (ms)", format="%.1f"),
    "detail": st.column_config.TextColumn("Detail", width="large"),
    "event_id": st.column_config.TextColumn("Event id"),
}


@st.cache_resource
def started_receivers() -> dict[int, subprocess.Popen[bytes]]:
    """Receivers this app process started, so their exit status is collected (no zombie processes)."""
    return {}


def reap_receivers() -> None:
    supervisor.reap(started_receivers())


# -- starting and stopping -------------------------------------------------------------------------------------------


current_status = supervisor.current_status


def start_receiver(mode: str, path: Path) -> None:
    port = int(st.session_state.get(PORT_KEY) or DEFAULT_PORT)
    started = supervisor.start_receiver(path, port, demo=mode == DEMO, children=started_receivers())
    if started.outcome == "exited":
        flash("error", f"The receiver stopped at once (exit code {started.returncode}). Its last lines:\n\n"
                       f"```\n{started.log_tail}\n```" if started.log_tail else
                       f"The receiver stopped at once (exit code {started.returncode}).")
    elif started.outcome == "running":
        flash("success", f"Receiver started on port {port}.")
    else:
        flash("warning", f"The receiver (pid {started.pid}) has not reported in yet; see {md_escape(started.log_path)}.")


STOP_MESSAGES = {
    "stopped": ("success", "Receiver stopped."),
    "still_running": ("warning", "Sent the stop signal to process {pid}, but it is still reporting in."),
    "already_stopped": ("info", "The receiver had already stopped."),
    "not_allowed": ("error", "Not allowed to stop process {pid}: it belongs to another user."),
    "not_a_receiver": ("error", "Process {pid} is not a webhook receiver started from this app; not stopping it."),
}


def stop_receiver(path: Path, pid: int) -> None:
    kind, message = STOP_MESSAGES[supervisor.stop_receiver(path, pid, children=started_receivers())]
    flash(kind, message.format(pid=pid))


# -- registering -----------------------------------------------------------------------------------------------------


def is_local_address(address: str) -> bool:
    host = urlsplit(address).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_private
    except ValueError:
        return False


def endpoint(source: str) -> str | None:
    base = str(st.session_state.get(ADDRESS_KEY) or "").strip().rstrip("/")
    return f"{base}/webhooks/{source}" if base else None


def show_source_error(source: str, error: SourceError) -> None:
    message = f"**{source_label(source)}: {diagnosis_title(str(error.kind))}** — {md_escape(error)}"
    if error.hint:
        message += f"\n\nWhat to do: {md_escape(error.hint)}"
    flash("error", message)


def register(source: str) -> None:
    """Register the receiver with `source` the way its handler says: through the vendor's API (keeping a signing
    secret it hands out), or, for a vendor without one, by showing the manual steps (the demo emulator does them)."""
    url = endpoint(source)
    if url is None:
        flash("warning", "Enter the receiver's public address first.")
        return
    handler = get_handler(source)
    label = source_label(source)
    mode = current_mode()
    try:
        integration = workspace(mode).integration(source)
    except ConfigError as error:
        not_connected(label, error)
        return
    except ValueError as error:
        flash("error", f"A saved setting is invalid: {md_escape(error)}. Fix it on the Connections page.")
        return
    try:
        registered = asyncio.run(integration.register_webhook(url))
    except ConfigError as error:
        not_connected(label, error)
        return
    except WebhookSetupRequired as setup:
        show_manual_steps(mode, source, url, [md_escape(line) for line in setup.steps])
        return
    except SourceError as error:
        show_source_error(source, error)
        return
    if not registered:
        if handler.manual_events:
            show_manual_steps(mode, source, url, [f"{label} did not confirm the webhook for {md_escape(url)}."])
        else:
            flash("warning", f"{label} did not confirm the webhook.")
        return
    st.session_state.pop(help_key(source), None)
    if handler.returned_secret:
        keep_secret(mode, source, handler.returned_secret, getattr(integration, handler.returned_secret, None))
    else:
        flash("success", handler.registered_message.format(label=label, events=handler.events_phrase,
                                                           url=md_escape(url)))


def not_connected(label: str, error: ConfigError) -> None:
    flash("warning", f"{label} is not connected (missing {', '.join(error.missing)}): add it on the "
                     "Connections page first.")


def help_key(source: str) -> str:
    return f"{HELP_KEY_PREFIX}{source}"


def show_manual_steps(mode: str, source: str, url: str, steps: list[str]) -> None:
    """Keep the steps a person follows in the vendor's own console on screen (in the demo the emulator does them)."""
    handler = get_handler(source)
    if mode == DEMO:
        # The emulator stands in for the vendor's console, so the demo carries on without it.
        demo_emulator().add_webhook(source, url, handler.manual_events)
        steps.append("In the demo workspace the emulator has done this for you.")
    elif current_status(db_path(mode))["running"]:
        fields = " and ".join(name.replace("_", " ") for name in handler.secret_fields)
        steps.append(f"Then restart the receiver so it verifies deliveries with the {fields}.")
    st.session_state[help_key(source)] = "\n\n".join(steps)


def keep_secret(mode: str, source: str, field: str, secret: str | None) -> None:
    """Save the signing secret the vendor handed out on registration as the source's `field` credential."""
    handler = get_handler(source)
    label = source_label(source)
    events = handler.events_phrase
    running = current_status(db_path(mode))["running"]
    restart = " Restart the receiver so it verifies deliveries with it." if running else ""
    if mode == DEMO:
        flash("success", f"{label} will post {events} to the receiver. The demo receiver already knows the "
                         "emulator's signing secret.")
        return
    if not secret:
        flash("error", f"{label} created the webhook but gave no signing secret; deliveries will be refused.")
        return
    env_var = handler.secret_env_vars[handler.secret_fields.index(field)] if field in handler.secret_fields else field
    creds = credential_store()
    try:
        creds.set(source, {field: secret})
    except (KeyringUnavailable, ValueError) as error:
        where = f" from {handler.secret_location}" if handler.secret_location else ""
        flash("error", f"{label} will post {events}, but its signing secret could not be saved: "
                       f"{md_escape(error)}. Copy it{where} into {env_var} (environment or .env).")
        return
    flash("success", f"{label} will post {events} to the receiver; its signing secret is saved in the "
                     f"keyring.{restart}")
    if creds.field_origins(source).get(field) in ("environment", ".env"):
        flash("warning", f"{env_var} is also set in the environment or .env, which takes precedence "
                         "over the keyring: update or remove it.")


# -- demo test events ------------------------------------------------------------------------------------------------


def receiver_address(heartbeat: dict[str, Any]) -> str:
    host = heartbeat.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere includes this machine
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{heartbeat['port']}"


def pick_test_record(source: str, path: Path) -> str:
    """A record the store does not have yet when there is one (so it shows up as new), else the newest."""
    candidates = demo_emulator().newest_record_ids(source, limit=200)
    with Store(path) as store:
        for record_id in candidates:
            if store.get_record(source, record_id) is None:
                return record_id
    return candidates[0]


def send_test_event(source: str, address: str, path: Path) -> None:
    handler = get_handler(source)
    kind = handler.test_event_kind or ""
    record_id = pick_test_record(source, path)
    try:
        response = demo_emulator().send_event(source, kind, record_id, url=f"{address}/webhooks/{source}")
    except httpx.HTTPError as error:
        flash("error", f"The test event could not be delivered ({md_escape(type(error).__name__)}): is the receiver "
                       "still running?")
        return
    try:
        verdict = str(response.json().get("verdict") or response.json().get("error"))
    except ValueError:
        verdict = "no JSON answer"
    label = source_label(source)
    if response.status_code != 200:
        flash("error", f"The receiver refused the {label} test event: HTTP {response.status_code} "
                       f"({md_escape(verdict)}).")
        return
    if verdict == "queued":
        note = handler.queued_note.format(label=label)
    else:
        note = "the record is in the store"
    flash("success", f"Sent a {label} `{kind}` event about record {md_escape(record_id)}: the receiver answered "
                     f"{md_escape(verdict)}; {note}. Open Explore to see it.")


# -- sections --------------------------------------------------------------------------------------------------------


def status_section(status: dict[str, Any]) -> None:
    heartbeat = status["heartbeat"] or {}
    running = status["running"]
    columns = st.columns(4)
    columns[0].metric("Receiver", "Running" if running else "Stopped")
    columns[1].metric("Port", str(heartbeat.get("port")) if running and heartbeat.get("port") else "—")
    columns[2].metric("Events today", f"{status['events_today']:,}")
    columns[3].metric("Rejected today", f"{status['rejected_today']:,}",
                      help="Deliveries refused because their signature did not verify: forgeries, or a wrong secret.")
    states = heartbeat.get("sources") or {}
    rows = []
    for source in webhook_handlers():
        state = states.get(source) or {}
        last = status["last_event"].get(source) or {}
        if not running:
            accepting = "—"
        elif state.get("accepting"):
            accepting = "yes"
        else:
            accepting = f"no: missing {', '.join(state.get('missing') or ['secret'])}"
        rows.append({
            "source": source_label(source),
            "accepting": accepting,
            "events today": int(status["events_today_by_source"].get(source, 0)),
            "last event": readable_datetime(parse_timestamp(last.get("received_at"))) or "—",
            "last type": last.get("event_type") or "—",
            "last verdict": human_label(str(last["verdict"])) if last.get("verdict") else "—",
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="webhook_sources_table",
                 column_config={name: st.column_config.TextColumn(name.capitalize())
                                for name in ("source", "accepting", "last event", "last type", "last verdict")})
    refused = {k: v for k, v in status["refused_today"].items() if k != "rejected" and v}
    notes = [f"{status['pending_fetches']} record(s) waiting to be fetched",
             f"{status['failed_fetches']} fetch(es) given up"]
    notes += [f"{count} {verdict.replace('_', ' ')} today" for verdict, count in sorted(refused.items())]
    st.caption(" · ".join(notes))


def control_section(mode: str, path: Path, status: dict[str, Any]) -> None:
    heartbeat = status["heartbeat"] or {}
    if status["running"]:
        st.success(f"Listening on {receiver_address(heartbeat)}/webhooks/… (process {heartbeat.get('pid')}, "
                   f"since {heartbeat.get('started_at')}). Records go to this workspace's database.",
                   icon=":material/sensors:")
        if heartbeat.get("pid") == os.getpid():
            st.caption("This receiver runs inside the app's own process and stops with it.")
        else:
            st.button("Stop receiver", key="webhooks_stop", icon=":material/stop_circle:", on_click=stop_receiver,
                      args=(path, int(heartbeat["pid"])))
        return
    columns = st.columns([1, 3], vertical_alignment="bottom")
    columns[0].number_input("Port", min_value=1024, max_value=65535, value=DEFAULT_PORT, step=1, key=PORT_KEY)
    columns[1].button("Start receiver", key="webhooks_start", type="primary", icon=":material/play_circle:",
                      on_click=start_receiver, args=(mode, path))
    st.caption("Runs `python -m feedback_sources serve-webhooks` on 127.0.0.1" +
               (" with the demo workspace." if mode == DEMO else " with your saved credentials and secrets."))


def register_section(mode: str, status: dict[str, Any]) -> None:
    heartbeat = status["heartbeat"] or {}
    port = heartbeat.get("port") if status["running"] else st.session_state.get(PORT_KEY)
    # In the demo the emulator posts from this machine, so the receiver's local address is the right default. It
    # follows the receiver's port until the person types an address of their own.
    suggested = f"http://127.0.0.1:{port or DEFAULT_PORT}" if mode == DEMO else ""
    state = st.session_state
    if ADDRESS_KEY not in state or state[ADDRESS_KEY] == state.get(SUGGESTED_ADDRESS_KEY):
        state[ADDRESS_KEY] = suggested
    state[SUGGESTED_ADDRESS_KEY] = suggested
    st.text_input("Receiver's public address", key=ADDRESS_KEY, placeholder="https://your-tunnel.example.com",
                  help="The address vendors post to; /webhooks/<source> is added for each source.")
    address = str(st.session_state.get(ADDRESS_KEY) or "").strip()
    if mode != DEMO and address and is_local_address(address):
        st.warning("Vendors post from the internet and cannot reach this address: use the public https address "
                   "of a tunnel (see below).", icon=":material/public_off:")
    handlers = webhook_handlers()
    columns = st.columns(max(1, len(handlers)))
    for column, (source, handler) in zip(columns, handlers.items()):
        box = column.container(border=True)
        box.markdown(f"**{source_label(source)}**")
        box.caption(handler.register_caption)
        box.button(f"Register {source_label(source)}", key=f"webhooks_register_{source}", on_click=register,
                   args=(source,))
    for source in handlers:
        help_text = st.session_state.get(help_key(source))
        if help_text:
            st.info(help_text, icon=":material/integration_instructions:")


def test_event_section(path: Path, status: dict[str, Any]) -> None:
    st.subheader("Send a test event")
    if not status["running"]:
        st.caption("Start the receiver to send it signed test events from the demo vendors.")
        return
    address = receiver_address(status["heartbeat"])
    st.caption("The emulator signs an event about one of its records exactly like the vendor would and posts it to "
               "the receiver; the record then shows up in Explore.")
    sources = [source for source, handler in webhook_handlers().items() if handler.test_event_kind]
    columns = st.columns(max(1, len(sources)))
    for column, source in zip(columns, sources):
        column.button(f"Send a test {source_label(source)} event", key=f"webhooks_test_{source}",
                      on_click=send_test_event, args=(source, address, path))


def events_section(path: Path) -> None:
    st.subheader("Recent events")
    with Store(path) as store:
        rows = recent_events(store, limit=50)
    if not rows:
        st.caption("No event has arrived in this workspace yet.")
        return
    frame = pd.DataFrame(rows)[list(EVENT_COLUMNS)]
    frame["received_at"] = [readable_datetime(parse_timestamp(v)) for v in frame["received_at"]]
    frame["source"] = [source_label(str(v)) for v in frame["source"]]
    frame["verdict"] = [human_label(str(v)) for v in frame["verdict"]]
    st.dataframe(frame, hide_index=True, width="stretch", column_config=EVENT_COLUMNS, key="webhook_events_table")


def vendor_names() -> str:
    labels = [source_label(source) for source in webhook_handlers()] or ["Vendors"]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def tunnel_section() -> None:
    with st.expander("Making the receiver reachable from the internet", icon=":material/public:"):
        st.markdown(
            f"{vendor_names()} post from their own servers, so they cannot reach `127.0.0.1` or an "
            "address inside your network. Expose the receiver's port through a tunnel and register the **https** "
            "address it prints, for example:"
        )
        st.code(f"cloudflared tunnel --url http://127.0.0.1:{DEFAULT_PORT}\nngrok http {DEFAULT_PORT}",
                language="bash")
        st.markdown(
            "Anyone who knows the address can post to it, but the receiver only stores deliveries whose signature "
            "verifies with the vendor's secret; everything else is counted as rejected. Stop the tunnel when you "
            "no longer need live updates: the next sync catches up on anything missed."
        )


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    st.title("Webhooks")
    st.caption("Live updates: vendors post each new ticket, conversation or survey response to a small receiver "
               "on this computer, which stores it at once instead of waiting for the next sync.")
    reap_receivers()
    show_flashes()
    status = current_status(path)
    st.subheader("Receiver")
    status_section(status)
    control_section(mode, path, status)
    st.button("Refresh", key="webhooks_refresh", icon=":material/refresh:")
    st.subheader("Register with the vendors")
    register_section(mode, status)
    if mode == DEMO:
        test_event_section(path, status)
    events_section(path)
    tunnel_section()


main()
