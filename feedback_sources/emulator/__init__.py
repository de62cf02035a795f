"""An emulator of the Zendesk Support, Intercom and SurveyMonkey APIs, with their real wire formats.

Used by the integration tests (over HTTP on 127.0.0.1), by the benchmarks and by the app's demo mode (in-process
through httpx.ASGITransport). It serves a deterministic, lazily generated dataset and can inject faults, enforce
scaled rate limits, mutate records for incremental-sync tests, register webhooks and send signed webhook events
(`Emulator.send_event`). Paths, one app for all three vendors:

    {root}/zendesk/{subdomain}/api/v2/...   {root}/intercom/...   {root}/surveymonkey/v3/...
"""

from .app import ConnectionDropped, create_app
from .config import (
    DEMO_INTERCOM_CLIENT_SECRET, DEMO_INTERCOM_TOKEN, DEMO_SURVEYMONKEY_CLIENT_ID, DEMO_SURVEYMONKEY_CLIENT_SECRET,
    DEMO_SURVEYMONKEY_TOKEN, DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_SUBDOMAIN, DEMO_ZENDESK_TOKEN,
    DEMO_ZENDESK_WEBHOOK_SECRET, VENDORS, EmulatorConfig, FixedWindowLimit,
)
from .core import Emulator, RequestRecord
from .faults import FAULT_KINDS, Fault, FaultQueue
from .server import run_emulator_server
from .webhooks import Delivery

__all__ = [
    "DEMO_INTERCOM_CLIENT_SECRET", "DEMO_INTERCOM_TOKEN", "DEMO_SURVEYMONKEY_CLIENT_ID",
    "DEMO_SURVEYMONKEY_CLIENT_SECRET", "DEMO_SURVEYMONKEY_TOKEN", "DEMO_ZENDESK_EMAIL", "DEMO_ZENDESK_SUBDOMAIN",
    "DEMO_ZENDESK_TOKEN", "DEMO_ZENDESK_WEBHOOK_SECRET", "FAULT_KINDS", "VENDORS", "ConnectionDropped", "Delivery",
    "Emulator", "EmulatorConfig", "Fault", "FixedWindowLimit", "FaultQueue", "RequestRecord", "create_app", "run_emulator_server",
]
