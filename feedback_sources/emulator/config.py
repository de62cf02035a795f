"""Settings of one emulator instance: dataset size and span, credentials, rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

DEMO_ZENDESK_SUBDOMAIN = "demo"
DEMO_ZENDESK_EMAIL = "pm@demo.example"
DEMO_ZENDESK_TOKEN = "demo-zendesk-token"
DEMO_INTERCOM_TOKEN = "demo-intercom-token"
DEMO_SURVEYMONKEY_TOKEN = "demo-surveymonkey-token"
# Webhook signing material: what Zendesk hands out per webhook, and each app's client credentials.
DEMO_ZENDESK_WEBHOOK_SECRET = "demo-zendesk-webhook-signing-secret"
DEMO_INTERCOM_CLIENT_SECRET = "demo-intercom-client-secret"
DEMO_SURVEYMONKEY_CLIENT_ID = "demo-surveymonkey-client-id"
DEMO_SURVEYMONKEY_CLIENT_SECRET = "demo-surveymonkey-client-secret"

VENDORS = ("zendesk", "intercom", "surveymonkey")

DEFAULT_SPAN = timedelta(days=120)


@dataclass(frozen=True)
class FixedWindowLimit:
    """A vendor limit of `requests` per `seconds` of real time, in fixed windows shared by every request to it.

    It replaces the vendor's usual limiter (and works with time_scale None). `advertised`, when given, is the limit
    the headers claim instead of the real one, with `remaining` counted down from it: a vendor whose headers
    disagree with what it enforces (a shared workspace quota, another app spending the same budget), so a client
    that trusts them runs into 429s it was not warned about.
    """

    requests: int
    seconds: float = 1.0
    advertised: int | None = None

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError("FixedWindowLimit.requests must be at least 1")
        if not self.seconds > 0:
            raise ValueError("FixedWindowLimit.seconds must be positive")
        if self.advertised is not None and self.advertised < 1:
            raise ValueError("FixedWindowLimit.advertised must be at least 1, or None")


@dataclass
class EmulatorConfig:
    """What the emulator serves. Defaults: a demo-sized dataset over the 120 days ending now.

    time_scale is the number of real seconds that stand for one vendor minute in the rate limiters (60.0 is real
    time, 0.5 makes a minute pass in half a second); None switches rate limiting and its headers off.
    """

    seed: int = 7
    zendesk_tickets: int = 2000
    intercom_conversations: int = 800
    surveymonkey_surveys: int = 3
    surveymonkey_responses_per_survey: int = 250
    start: datetime | None = None
    end: datetime | None = None
    time_scale: float | None = None
    # Distinct customers behind the feedback; None derives it from the dataset size.
    customers: int | None = None

    zendesk_subdomain: str = DEMO_ZENDESK_SUBDOMAIN
    zendesk_email: str = DEMO_ZENDESK_EMAIL
    zendesk_token: str = DEMO_ZENDESK_TOKEN
    intercom_token: str = DEMO_INTERCOM_TOKEN
    surveymonkey_token: str = DEMO_SURVEYMONKEY_TOKEN
    # Tokens that authenticate but lack the read scopes (Intercom answers 403 token_unauthorized, SurveyMonkey 403).
    intercom_scopeless_tokens: frozenset[str] | set[str] = field(default_factory=frozenset)
    surveymonkey_scopeless_tokens: frozenset[str] | set[str] = field(default_factory=frozenset)
    intercom_app_id_code: str = "demoapp1"

    # Webhooks: the signing secret Zendesk's signing_secret endpoint hands out (one for every webhook here), the
    # Intercom app's client secret and the SurveyMonkey app's client id and secret that sign deliveries.
    zendesk_webhook_secret: str = DEMO_ZENDESK_WEBHOOK_SECRET
    intercom_client_secret: str = DEMO_INTERCOM_CLIENT_SECRET
    surveymonkey_client_id: str = DEMO_SURVEYMONKEY_CLIENT_ID
    surveymonkey_client_secret: str = DEMO_SURVEYMONKEY_CLIENT_SECRET
    zendesk_account_id: int = 88_888_888
    # How long SurveyMonkey's HEAD check of a subscription URL may take before the URL counts as unreachable.
    webhook_check_timeout: float = 5.0

    # Requests per vendor minute (see time_scale).
    zendesk_account_rate_limit: int = 700
    zendesk_export_rate_limit: int = 10
    intercom_rate_limit: int = 10_000
    surveymonkey_minute_limit: int = 120
    surveymonkey_day_limit: int = 500

    # Real Zendesk leaves out of the export whatever changed in the last minute; 0 serves changes at once.
    zendesk_export_hold_back_seconds: int = 0

    # Per vendor, a tight fixed-window limit in real seconds that replaces the vendor's usual limiter (see
    # FixedWindowLimit); Emulator.set_rate_limit changes it while serving.
    fixed_window_limits: dict[str, FixedWindowLimit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.end is None:
            self.end = datetime.now(timezone.utc).replace(microsecond=0)
        elif self.end.tzinfo is None:
            self.end = self.end.replace(tzinfo=timezone.utc)
        if self.start is None:
            self.start = self.end - DEFAULT_SPAN
        elif self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=timezone.utc)
        if self.start > self.end:
            raise ValueError("EmulatorConfig.start must not be after end")
        if self.time_scale is not None and self.time_scale <= 0:
            raise ValueError("EmulatorConfig.time_scale must be positive or None")
        unknown = sorted(set(self.fixed_window_limits) - set(VENDORS))
        if unknown:
            raise ValueError(f"EmulatorConfig.fixed_window_limits: unknown vendor(s) {unknown}; expected {VENDORS}")
        self.fixed_window_limits = dict(self.fixed_window_limits)
        self.intercom_scopeless_tokens = frozenset(self.intercom_scopeless_tokens)
        self.surveymonkey_scopeless_tokens = frozenset(self.surveymonkey_scopeless_tokens)

    @property
    def start_ts(self) -> int:
        assert self.start is not None
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        assert self.end is not None
        return int(self.end.timestamp())

    @property
    def customer_count(self) -> int:
        if self.customers is not None:
            return max(1, self.customers)
        records = (self.zendesk_tickets + self.intercom_conversations
                   + self.surveymonkey_surveys * self.surveymonkey_responses_per_survey // 3)
        return max(60, records // 4)
