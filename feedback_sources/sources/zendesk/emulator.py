"""Zendesk Support: tickets, users and organizations, and the cursor-based incremental ticket export."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...emulator.collection import Entry, LazyCollection
from ...emulator.config import EmulatorConfig
from ...emulator.data import (
    AGENTS, DISPLAY_PLAN, SALT_ADDED, SALT_TICKET, PLAN_TAGS, BlockCache, Customer, People, make_feedback,
    pick, record_rng, to_unix, unit_interval, utc_z_time,
)
from ...emulator.wire import BadRequest, Call, Reply, VendorApi, decode_cursor, encode_cursor, int_param, parse_basic_auth

FIRST_TICKET_ID = 1
CUSTOMER_USER_BASE = 10_000_000
AGENT_USER_BASE = 9_000_000
ADMIN_USER_ID = 9_000_100
# Requesters in this range were deleted from the account: tickets point at them, no user record exists.
MISSING_USER_BASE = 8_000_000
ORGANIZATION_BASE = 5_000_000
GROUPS = ((20001, "Support"), (20002, "Billing"), (20003, "Engineering escalations"))
FIELD_PRODUCT_AREA = 360000001
FIELD_PLAN = 360000002
MAX_PER_PAGE = 1000
START_TIME_MIN_AGE = 60
DELETED_SHARE = 0.01
_SALT_DELETED = 40

_PRIORITIES = {
    "bug": ("urgent", "high", "high", "normal"),
    "complaint": ("high", "normal", "urgent"),
    "feature_request": ("low", "normal", None),
    "question": ("normal", "low", None),
    "praise": ("low", None),
}
_TYPES = {
    "bug": ("problem", "incident"),
    "complaint": ("problem", None),
    "feature_request": ("task", None),
    "question": ("question",),
    "praise": (None,),
}
_CHANNELS = ("email", "email", "web", "api", "chat", "mobile")
# `description` is plain text, and customers type what looks like markup or a formula into it.
TYPED_MARKUP_SHARE = 0.08
TYPED_MARKUP_LINES = (
    "Steps: Reports > Export & choose <b>CSV</b>, then nothing happens.",
    "The total cell shows =SUM(B2:B40) instead of a number.",
    "It only works when rows < 1000 & the filter is off.",
    "Our template uses <customer_name> and it prints literally.",
    "+1 from the whole team, this blocks us @ month end",
)
# Base tickets share these never-mutated values (fewer allocations per page); public getters hand out deep copies.
_EMPTY: list = []
_VIA = {channel: {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}} for channel in set(_CHANNELS)}


def _cursor(key: tuple[int, int]) -> str:
    # Shaped like Zendesk's own cursors (base64 of "timestamp.0||id|"), and just as opaque to clients.
    return encode_cursor(f"{key[0]}.0||{key[1]}|")


def _parse_cursor(cursor: str) -> tuple[int, int]:
    match = re.fullmatch(r"(-?\d+)\.0\|\|(-?\d+)\|", decode_cursor(cursor))
    if not match:
        raise BadRequest("invalid cursor")
    return int(match.group(1)), int(match.group(2))


class ZendeskDataset:
    def __init__(self, config: EmulatorConfig, people: People, now: Callable[[], int]) -> None:
        self.config = config
        self.people = people
        self._now = now
        self.seed = config.seed
        self._start_ts, self._end_ts = config.start_ts, config.end_ts
        span = config.end_ts - config.start_ts
        self._base = BlockCache(config.seed, SALT_TICKET, self._base_ticket)
        self.tickets = LazyCollection(
            count=config.zendesk_tickets, start_ts=config.start_ts, end_ts=config.end_ts, seed=config.seed,
            salt=SALT_TICKET, first_id=FIRST_TICKET_ID, max_lag_seconds=min(21 * 86400, span // 3),
            make_record=self._base.get,
        )
        self._base_live_count: int | None = None

    # ---- generation ---------------------------------------------------------------------------------------------

    def _base_deleted(self, index: int) -> bool:
        return unit_interval(self.seed, _SALT_DELETED, index) < DELETED_SHARE

    def _base_ticket(self, rng: random.Random, index: int) -> dict[str, Any] | None:
        if index >= self.tickets.count:
            return None
        updated, created = self.tickets.stamps(index)
        return self._build_ticket(rng, FIRST_TICKET_ID + index, created, updated, self._base_deleted(index))

    def _build_ticket(self, rng: random.Random, ticket_id: int, created: int, updated: int,
                      deleted: bool) -> dict[str, Any]:
        customer = self.people.pick_customer(rng)
        plan = PLAN_TAGS[customer.tier]
        feedback = make_feedback(rng, customer.first_name, DISPLAY_PLAN[customer.tier])
        kind = feedback.kind
        requester_id = (MISSING_USER_BASE + ticket_id if rng.random() < 0.02
                        else CUSTOMER_USER_BASE + customer.index)
        age = (self._end_ts - updated) / max(1, self._end_ts - self._start_ts)
        if deleted:
            status = "deleted"
        elif age > 0.3:
            status = pick(rng, ("closed", "closed", "solved", "solved", "open"))
        else:
            status = pick(rng, ("new", "open", "open", "pending", "hold", "solved"))
        agent = pick(rng, AGENTS)
        assignee_id = None if status == "new" else AGENT_USER_BASE + agent.index
        tags = feedback.tags
        if rng.random() < 0.5:
            tags.append(plan)
        if rng.random() < 0.05:
            tags.append("vip")
        if rng.random() < 0.05:
            tags = []
        subject: str | None = feedback.subject
        if rng.random() < 0.03:
            subject = None
        if status in ("solved", "closed") and rng.random() < 0.4:
            score = "good" if kind in ("praise", "question", "feature_request") or rng.random() < 0.5 else "bad"
            satisfaction: dict[str, Any] = {"id": 7_000_000 + ticket_id, "score": score,
                                            "comment": pick(rng, ("", "Quick answer, thanks", "Took too long"))}
        else:
            satisfaction = {"score": "offered" if status == "pending" and rng.random() < 0.3 else "unoffered"}
        group_id = GROUPS[1][0] if feedback.topic.tag == "billing" else pick(rng, (GROUPS[0][0], GROUPS[2][0]))
        organization_id = ORGANIZATION_BASE + customer.company.index if customer.company else None
        custom_fields = [{"id": FIELD_PRODUCT_AREA, "value": feedback.topic.key},
                         {"id": FIELD_PLAN, "value": plan if rng.random() < 0.7 else None}]
        channel = pick(rng, _CHANNELS)
        ticket = {
            "id": ticket_id,
            "external_id": None,
            "via": _VIA[channel],
            "created_at": utc_z_time(created),
            "updated_at": utc_z_time(updated),
            "generated_timestamp": updated,
            "type": pick(rng, _TYPES[kind]),
            "subject": subject,
            "raw_subject": subject,
            "description": feedback.plain_text(),
            "priority": pick(rng, _PRIORITIES[kind]),
            "status": status,
            "recipient": "support@acmecloud.example" if channel == "email" else None,
            "requester_id": requester_id,
            "submitter_id": requester_id,
            "assignee_id": assignee_id,
            "organization_id": organization_id,
            "group_id": group_id,
            "collaborator_ids": _EMPTY,
            "follower_ids": _EMPTY,
            "email_cc_ids": _EMPTY,
            "forum_topic_id": None,
            "problem_id": None,
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": tags,
            "custom_fields": custom_fields,
            "satisfaction_rating": satisfaction,
            "sharing_agreement_ids": _EMPTY,
            "custom_status_id": None,
            "fields": custom_fields,
            "followup_ids": _EMPTY,
            "ticket_form_id": 360000100,
            "brand_id": 360000200,
            "allow_channelback": False,
            "allow_attachments": True,
            "from_messaging_channel": channel == "chat",
        }
        # Drawn last, so the fields above stay what they were for every seed.
        if rng.random() < TYPED_MARKUP_SHARE:
            ticket["description"] += "\n\n" + pick(rng, TYPED_MARKUP_LINES)
        return ticket

    def _customer_user(self, customer: Customer) -> dict[str, Any]:
        signed_up = self.config.start_ts - customer.signed_up_offset_days * 86400
        plan = PLAN_TAGS[customer.tier] if customer.plan_label is not None else None
        return {
            "id": CUSTOMER_USER_BASE + customer.index,
            "name": customer.name,
            "email": customer.email,
            "created_at": utc_z_time(signed_up),
            "updated_at": utc_z_time(signed_up + 86400),
            "time_zone": "UTC",
            "iana_time_zone": "Etc/UTC",
            "phone": None,
            "photo": None,
            "locale": "en-US",
            "locale_id": 1,
            "organization_id": ORGANIZATION_BASE + customer.company.index if customer.company else None,
            "role": "end-user",
            "verified": customer.email is not None,
            "external_id": None,
            "tags": [plan] if plan else [],
            "alias": "",
            "active": True,
            "shared": False,
            "suspended": False,
            "details": "",
            "notes": "",
            "default_group_id": None,
            # Accounts that never set up user fields send an empty object, not nulls.
            "user_fields": {"plan": plan, "country": customer.country} if plan else {},
        }

    def _agent_user(self, user_id: int) -> dict[str, Any] | None:
        if user_id == ADMIN_USER_ID:
            name, email, role = "Pat Morgan", self.config.zendesk_email, "admin"
        elif AGENT_USER_BASE <= user_id < AGENT_USER_BASE + len(AGENTS):
            agent = AGENTS[user_id - AGENT_USER_BASE]
            name, email, role = agent.name, agent.email, "agent"
        else:
            return None
        created = utc_z_time(self.config.start_ts - 400 * 86400)
        return {
            "id": user_id, "name": name, "email": email, "created_at": created, "updated_at": created,
            "time_zone": "UTC", "iana_time_zone": "Etc/UTC", "phone": None, "photo": None, "locale": "en-US",
            "locale_id": 1, "organization_id": None, "role": role, "verified": True, "external_id": None,
            "tags": [], "alias": "", "active": True, "shared": False, "suspended": False, "details": "",
            "notes": "", "default_group_id": GROUPS[0][0], "user_fields": {"plan": None, "country": None},
        }

    # ---- lookups ------------------------------------------------------------------------------------------------

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """A copy of the current ticket (deleted ones included), without its request-dependent url."""
        ticket = self.tickets.get(ticket_id)
        return copy.deepcopy(ticket) if ticket is not None else None

    def user(self, user_id: int) -> dict[str, Any] | None:
        if CUSTOMER_USER_BASE <= user_id < CUSTOMER_USER_BASE + self.people.customer_count:
            return self._customer_user(self.people.customer(user_id - CUSTOMER_USER_BASE))
        return self._agent_user(user_id)

    def organization(self, organization_id: int) -> dict[str, Any] | None:
        index = organization_id - ORGANIZATION_BASE
        if not 0 <= index < 80:
            return None
        company = self.people.company(index)
        created = utc_z_time(self.config.start_ts - 500 * 86400)
        return {
            "id": organization_id, "name": company.name, "shared_tickets": False, "shared_comments": False,
            "external_id": None, "created_at": created, "updated_at": created, "domain_names": [company.domain],
            "details": "", "notes": "", "group_id": None, "tags": [PLAN_TAGS[company.tier]],
            "organization_fields": {"plan": DISPLAY_PLAN[company.tier], "employees": company.employees},
        }

    def _is_deleted(self, entry: Entry) -> bool:
        if entry[3] >= 0:
            return self._base_deleted(entry[3])
        return self.tickets.record_for(entry)["status"] == "deleted"

    def live_ticket_count(self) -> int:
        if self._base_live_count is None:
            self._base_live_count = sum(1 for i in range(self.tickets.count) if not self._base_deleted(i))
        count = self._base_live_count
        for ticket_id, (_, _, record) in self.tickets.overrides().items():
            index = self.tickets.index_of(ticket_id)
            if index is not None and not self._base_deleted(index):
                count -= 1
            if record["status"] != "deleted":
                count += 1
        return count

    # ---- ground truth for tests ---------------------------------------------------------------------------------

    def tickets_in_range(self, start: datetime | int | None = None, end: datetime | int | None = None, *,
                         include_deleted: bool = False) -> list[int]:
        """Ids of the tickets created in [start, end) (either bound optional), ascending."""
        low = to_unix(start) if start is not None else None
        high = to_unix(end) if end is not None else None
        ids = []
        for entry in self.tickets.all_entries():
            created = entry[2]
            if (low is None or created >= low) and (high is None or created < high):
                if include_deleted or not self._is_deleted(entry):
                    ids.append(entry[1])
        return sorted(ids)

    def all_ticket_ids(self, *, include_deleted: bool = False) -> list[int]:
        return self.tickets_in_range(include_deleted=include_deleted)

    # ---- mutations ----------------------------------------------------------------------------------------------

    def update_ticket(self, ticket_id: int, **fields: Any) -> dict[str, Any]:
        """Change a ticket; its updated_at moves to now (or the given updated_at), so the export serves it again."""
        with self.tickets.lock:
            current = self.ticket(ticket_id)
            stamps = self.tickets.timestamps(ticket_id)
            if current is None or stamps is None:
                raise KeyError(f"no ticket {ticket_id}")
            return self._store(ticket_id, current, stamps[1], fields)

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        """Soft delete: the export lists the ticket again, with status "deleted", updated now."""
        return self.update_ticket(ticket_id, status="deleted")

    def mark_spam(self, ticket_id: int) -> dict[str, Any]:
        """Marking as spam deletes the ticket (and suspends its requester): to the export it is a deleted ticket."""
        return self.update_ticket(ticket_id, status="deleted")

    def delete_permanently(self, ticket_id: int) -> dict[str, Any]:
        """Permanent deletion scrubs what the customer wrote; the export still lists the ticket as deleted."""
        return self.update_ticket(ticket_id, status="deleted", subject="SCRUBBED", raw_subject="SCRUBBED",
                                  description="SCRUBBED", tags=[])

    def add_ticket(self, **fields: Any) -> dict[str, Any]:
        """Create a ticket now (or at the given created_at/updated_at); generated content unless given."""
        with self.tickets.lock:
            ticket_id = self.tickets.next_id()
            now = self._now()
            created = to_unix(fields["created_at"]) if "created_at" in fields else now
            rng = record_rng(self.seed, SALT_ADDED, ticket_id)
            record = self._build_ticket(rng, ticket_id, created, created, False)
            record["status"] = "new"
            record["assignee_id"] = None
            return self._store(ticket_id, record, created, fields)

    def _store(self, ticket_id: int, record: dict[str, Any], created: int, fields: dict[str, Any]) -> dict:
        fields = dict(fields)
        updated = to_unix(fields.pop("updated_at")) if "updated_at" in fields else self._now()
        if "created_at" in fields:
            created = to_unix(fields.pop("created_at"))
        if "subject" in fields and "raw_subject" not in fields:
            fields["raw_subject"] = fields["subject"]
        record.update(fields)
        record["created_at"] = utc_z_time(created)
        record["updated_at"] = utc_z_time(updated)
        record["generated_timestamp"] = updated
        self.tickets.put(ticket_id, record, updated, created)
        return record


class ZendeskApi(VendorApi):
    vendor = "zendesk"

    config: EmulatorConfig
    data: ZendeskDataset

    # ---- protocol -----------------------------------------------------------------------------------------------

    def authenticate(self, call: Call) -> Reply | None:
        header = call.headers.get("authorization")
        if header is None and call.endpoint == "/api/v2/users/me.json":
            return None  # answered as the anonymous user, like Zendesk does
        credentials = parse_basic_auth(header)
        expected = (f"{self.config.zendesk_email}/token", self.config.zendesk_token)
        if credentials != expected or self._token_expired():
            return Reply(401, {"error": "Couldn't authenticate you"})
        return None

    def is_export(self, call: Call) -> bool:
        return call.endpoint.startswith("/api/v2/incremental/")

    def error(self, status: int, message: str | None = None, code: str | None = None) -> Reply:
        if status == 401:
            return Reply(401, {"error": "Couldn't authenticate you"})
        if status == 404:
            return Reply(404, {"error": "RecordNotFound", "description": message or "Not found"})
        if status == 429:
            return Reply(429, {"error": "APIRateLimitExceeded",
                               "description": message or "Number of allowed API requests per minute exceeded"})
        if status == 422:
            return Reply(422, {"error": code or "InvalidValue", "description": message or "Invalid value"})
        if status == 403:
            return Reply(403, {"error": "Forbidden", "description": message or "You do not have access to this page."})
        if status == 400:
            return Reply(400, {"error": code or "InvalidPaginationParameter", "description": message or "Bad request"})
        if status >= 500:
            return Reply(status, {"error": "ServiceUnavailable" if status == 503 else "InternalError",
                                  "description": message or "Server error, please try again later"})
        return Reply(status, {"error": code or "Error", "description": message or f"HTTP {status}"})

    def handle(self, call: Call) -> Reply:
        if call.method != "GET":
            return self.error(404, "Not found", "InvalidEndpoint")
        endpoint = call.endpoint
        if endpoint == "/api/v2/users/me.json":
            return self._me(call)
        if endpoint == "/api/v2/incremental/tickets/cursor.json":
            return self._export(call)
        if endpoint == "/api/v2/tickets/count.json":
            return Reply(200, {"count": {"value": self.data.live_ticket_count(),
                                         "refreshed_at": utc_z_time(self._now())}})
        match = re.fullmatch(r"/api/v2/(tickets|users|organizations)/(\d+)\.json", endpoint)
        if match:
            return self._show(call, match.group(1), int(match.group(2)))
        return self.error(404, "Not found", "InvalidEndpoint")

    # ---- endpoints ----------------------------------------------------------------------------------------------

    def _me(self, call: Call) -> Reply:
        if call.headers.get("authorization") is None:
            return Reply(200, {"user": {
                "id": None, "url": None, "name": "Anonymous user", "email": "invalid@example.com",
                "created_at": None, "updated_at": None, "role": "end-user", "verified": False, "active": True,
                "locale": "en-US", "organization_id": None, "user_fields": {},
            }})
        admin = self.data.user(ADMIN_USER_ID)
        assert admin is not None
        return Reply(200, {"user": self._with_url(call, "users", admin)})

    def _show(self, call: Call, kind: str, record_id: int) -> Reply:
        if kind == "tickets":
            ticket = self.data.tickets.get(record_id)
            if ticket is None or ticket["status"] == "deleted":
                return self.error(404)
            body: dict[str, Any] = {"ticket": self._with_url(call, "tickets", ticket)}
            include = {part.strip() for part in call.query.get("include", "").split(",") if part.strip()}
            self._side_load(call, body, [ticket], include)
            return Reply(200, body)
        if kind == "users":
            user = self.data.user(record_id)
            return self.error(404) if user is None else Reply(200, {"user": self._with_url(call, "users", user)})
        organization = self.data.organization(record_id)
        if organization is None:
            return self.error(404)
        return Reply(200, {"organization": self._with_url(call, "organizations", organization)})

    @staticmethod
    def _with_url(call: Call, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"{call.base_url}/api/v2/{kind}/{record['id']}.json", **record}

    def _export(self, call: Call) -> Reply:
        query = call.query
        per_page = min(int_param(query, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
        include = {part.strip() for part in query.get("include", "").split(",") if part.strip()}
        exclude_deleted = query.get("exclude_deleted", "").lower() in ("true", "1")
        now = self._now()
        if query.get("cursor"):
            key = _parse_cursor(query["cursor"])
        elif query.get("start_time") not in (None, ""):
            try:
                start_time = int(query["start_time"])
            except ValueError as error:
                raise BadRequest("start_time must be a unix timestamp", 400, "InvalidValue") from error
            if start_time > now - START_TIME_MIN_AGE:
                raise BadRequest("Too recent start_time. Use a start_time older than 1 minute", 422,
                                 "InvalidValue")
            key = (start_time - 1, 1 << 62)  # everything updated at or after start_time
        else:
            raise BadRequest("start_time or cursor is required", 400, "InvalidPaginationParameter")

        tickets: list[dict[str, Any]] = []
        last_key = key
        more = False
        if not call.empty_page:
            until = now - self.config.zendesk_export_hold_back_seconds
            for entry in self.data.tickets.iter_after(key, until):
                record = self.data.tickets.record_for(entry)
                skipped = exclude_deleted and record["status"] == "deleted"
                if len(tickets) == per_page:
                    if not skipped:
                        more = True
                        break
                    continue
                last_key = (entry[0], entry[1])
                if not skipped:
                    tickets.append(self._with_url(call, "tickets", record))
        else:
            more = True

        after_cursor = _cursor(last_key)
        passthrough = {name: query.get(name) for name in ("per_page", "include", "exclude_deleted")}
        body: dict[str, Any] = {
            "tickets": tickets,
            "after_url": call.url(cursor=after_cursor, **passthrough),
            "after_cursor": after_cursor,
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": not more,
        }
        self._side_load(call, body, tickets, include)
        return Reply(200, body)

    def _side_load(self, call: Call, body: dict[str, Any], tickets: list[dict[str, Any]], include: set[str]) -> None:
        if "users" in include:
            body["users"] = self._side_load_users(call, tickets)
        if "organizations" in include:
            organization_ids = sorted({t["organization_id"] for t in tickets if t["organization_id"]})
            body["organizations"] = [
                self._with_url(call, "organizations", org)
                for org in map(self.data.organization, organization_ids) if org is not None
            ]

    def _side_load_users(self, call: Call, tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        user_ids: set[int] = set()
        for ticket in tickets:
            for field_name in ("requester_id", "submitter_id", "assignee_id"):
                if ticket[field_name] is not None:
                    user_ids.add(ticket[field_name])
        users = []
        for user_id in sorted(user_ids):
            user = self.data.user(user_id)
            if user is not None:  # deleted requesters are simply absent, as in Zendesk
                users.append(self._with_url(call, "users", user))
        return users


# -- emulator vendor: settings, rate limits, webhooks ------------------------------------------------------------

from ...emulator.ratelimit import RateDecision, Scale, WindowLimiter  # noqa: E402
from ...emulator.vendor import EmulatorVendor, RateLimitProfile  # noqa: E402
from .emulator_webhooks import WEBHOOKS  # noqa: E402

DEMO_ZENDESK_SUBDOMAIN = "demo"
DEMO_ZENDESK_EMAIL = "pm@demo.example"
DEMO_ZENDESK_TOKEN = "demo-zendesk-token"
# What Zendesk hands out per webhook (one for every webhook here).
DEMO_ZENDESK_WEBHOOK_SECRET = "demo-zendesk-webhook-signing-secret"
# Zendesk's own spelling of a UTC time, kept under its old name for callers of the emulator's data module.
zendesk_time = utc_z_time

SETTINGS: dict[str, Any] = {
    "zendesk_tickets": 2000,
    "zendesk_subdomain": DEMO_ZENDESK_SUBDOMAIN,
    "zendesk_email": DEMO_ZENDESK_EMAIL,
    "zendesk_token": DEMO_ZENDESK_TOKEN,
    # The signing secret the signing_secret endpoint hands out, and the account id deliveries name.
    "zendesk_webhook_secret": DEMO_ZENDESK_WEBHOOK_SECRET,
    "zendesk_account_id": 88_888_888,
    # Requests per vendor minute (see EmulatorConfig.time_scale).
    "zendesk_account_rate_limit": 700,
    "zendesk_export_rate_limit": 10,
    # Real Zendesk leaves out of the export whatever changed in the last minute; 0 serves changes at once.
    "zendesk_export_hold_back_seconds": 0,
}

_HELP_CENTER_CLOSED = (
    "<!DOCTYPE html><html><head><title>Help Center Closed | Zendesk</title></head>"
    "<body><h1>Oops! This help center no longer exists</h1>"
    "<p>The page you were looking for doesn't exist.</p></body></html>"
)


class ZendeskLimiter:
    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        minute = scale.seconds_per_minute
        self.account = WindowLimiter(config.zendesk_account_rate_limit, minute)
        self.export = WindowLimiter(config.zendesk_export_rate_limit, minute)

    def check(self, is_export: bool, now: float) -> RateDecision:
        blocked_by: WindowLimiter | None = None
        if not self.account.has_room(now):
            blocked_by = self.account
        elif is_export and not self.export.has_room(now):
            blocked_by = self.export
        if blocked_by is None:
            self.account.consume(now)
            if is_export:
                self.export.consume(now)
        headers = self._headers(is_export, now)
        if blocked_by is not None:
            wait = blocked_by.reset_at(now) - now
            headers["Retry-After"] = self.scale.duration(wait)
            reason = ("Number of allowed incremental export API requests per minute exceeded"
                      if blocked_by is self.export else "Number of allowed API requests per minute exceeded")
            return RateDecision(False, headers, wait, reason)
        return RateDecision(True, headers)

    def _headers(self, is_export: bool, now: float) -> dict[str, str]:
        remaining = str(self.account.remaining(now))
        headers = {
            "X-Rate-Limit": str(self.account.limit),
            "X-Rate-Limit-Remaining": remaining,
            "ratelimit-limit": str(self.account.limit),
            "ratelimit-remaining": remaining,
            "ratelimit-reset": self.scale.duration(self.account.reset_at(now) - now),
        }
        if is_export:
            headers["Zendesk-RateLimit-incremental-exports"] = (
                f"total={self.export.limit}; remaining={self.export.remaining(now)}; "
                f"resets={self.scale.duration(self.export.reset_at(now) - now)}"
            )
        return headers


def _fixed_headers(is_export: bool, limit: str, remaining: int, reset_at: float, reset_in: float) -> dict[str, str]:
    headers = {
        "X-Rate-Limit": limit,
        "X-Rate-Limit-Remaining": str(remaining),
        "ratelimit-limit": limit,
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": f"{reset_in:.2f}",
    }
    if is_export:
        headers["Zendesk-RateLimit-incremental-exports"] = (
            f"total={limit}; remaining={remaining}; resets={reset_in:.2f}"
        )
    return headers


def _help_center_closed() -> Reply:
    # A subdomain that is not the account's: Zendesk answers with its help-center page, not JSON.
    return Reply(404, _HELP_CENTER_CLOSED, media_type="text/html; charset=utf-8")


VENDOR = EmulatorVendor(
    name="zendesk",
    dataset=ZendeskDataset,
    api=ZendeskApi,
    base_path=lambda config: f"/zendesk/{config.zendesk_subdomain}",
    record_count=lambda config: config.zendesk_tickets,
    settings=SETTINGS,
    rate_limits=RateLimitProfile(
        limiter=ZendeskLimiter,
        fixed_headers=_fixed_headers,
        fixed_retry_after=True,
        fixed_reason="Number of allowed API requests per minute exceeded",
    ),
    webhooks=WEBHOOKS,
    misaddressed=_help_center_closed,
)
