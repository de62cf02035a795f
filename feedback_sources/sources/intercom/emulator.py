"""Intercom: conversations with their parts, contacts, and the conversation search."""

from __future__ import annotations

import copy
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...emulator.collection import Entry, LazyCollection
from ...emulator.config import EmulatorConfig
from ...emulator.data import (
    AGENTS, DISPLAY_PLAN, SALT_ADDED, SALT_CONVERSATION, BlockCache, Customer, Feedback, People, follow_up,
    make_feedback, mix64, pick, record_rng, short_reply, to_unix,
)
from ...emulator.wire import BadRequest, Call, Reply, VendorApi, decode_cursor, encode_cursor, request_id

FIRST_CONVERSATION_ID = 1_000_001
ADMIN_ID_BASE = 7_000_000
ME_ADMIN_ID = "7000099"
TEAM_IDS = ("5017691", "5017692")
MAX_PER_PAGE = 150
DEFAULT_PER_PAGE = 20
TAG_NAMES = ("bug", "feature_request", "question", "praise", "complaint", "export", "sso", "billing", "mobile_app",
             "performance", "integrations", "notifications", "dashboards", "permissions", "api", "search",
             "onboarding", "vip")
_SEARCH_FIELDS = ("created_at", "updated_at", "id")
# Fin, Intercom's AI agent, writes as a bot; operator workflows too. Teams author assignments made by rules.
FIN_BOT_ID = "7000900"
REDACTED_BODY = "<p><i>This message was deleted</i></p>"
_ATTRIBUTES = (("Product area", None), ("Issue type", ("Bug", "Billing", "How-to")), ("jira_issue_key", None))


def admin_id(index: int) -> str:
    return str(ADMIN_ID_BASE + index)


def fin_ref(app_id: str) -> dict[str, Any]:
    """Fin as a part author: a bot, flagged as the AI agent."""
    return {"type": "bot", "id": FIN_BOT_ID, "name": "Fin", "email": f"operator+{app_id}@intercom.io",
            "from_ai_agent": True, "is_ai_answer": True}


def team_ref(team_id: str) -> dict[str, Any]:
    return {"type": "team", "id": team_id, "name": "Support" if team_id == TEAM_IDS[0] else "Billing", "email": None}


def fin_answer(feedback: Feedback) -> str:
    return (f"I'm Fin, an AI agent. Here is what I found about {feedback.topic.label}: "
            "our help center has a step-by-step guide. Did that answer your question?")


def _tag(name: str, applied_at: int, by_admin: str) -> dict[str, Any]:
    tag_id = str(5_000_000 + TAG_NAMES.index(name)) if name in TAG_NAMES else str(5_100_000 + len(name))
    return {"type": "tag", "id": tag_id, "name": name, "applied_at": applied_at,
            "applied_by": {"type": "admin", "id": by_admin}}


class IntercomDataset:
    def __init__(self, config: EmulatorConfig, people: People, now: Callable[[], int]) -> None:
        self.config = config
        self.people = people
        self._now = now
        self.seed = config.seed
        self._contact_prefix = f"{mix64(config.seed) & 0xFFFFFFFF:08x}"
        span = config.end_ts - config.start_ts
        self._base = BlockCache(config.seed, SALT_CONVERSATION, self._base_conversation)
        self.conversations = LazyCollection(
            count=config.intercom_conversations, start_ts=config.start_ts, end_ts=config.end_ts,
            seed=config.seed, salt=SALT_CONVERSATION, first_id=FIRST_CONVERSATION_ID,
            max_lag_seconds=min(14 * 86400, span // 3), make_record=self._base.get,
        )
        # Deleted conversations: GET answers 404 and the search no longer finds them, as in Intercom.
        self.deleted: set[int] = set()
        # Contacts changed since the dataset was generated: their changed fields, `updated_at` included.
        self.contact_changes: dict[str, dict[str, Any]] = {}

    # ---- contacts -----------------------------------------------------------------------------------------------

    def contact_id(self, customer: Customer) -> str:
        return f"{self._contact_prefix}{customer.index:016x}"

    def _customer_for_contact(self, contact_id: str) -> Customer | None:
        if not re.fullmatch(re.escape(self._contact_prefix) + r"[0-9a-f]{16}", contact_id):
            return None
        index = int(contact_id[8:], 16)
        return self.people.customer(index) if index < self.people.customer_count else None

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        found = self._generated_contact(contact_id)
        if found is not None and contact_id in self.contact_changes:
            found.update(copy.deepcopy(self.contact_changes[contact_id]))
        return found

    def change_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Replace top-level fields of a contact (e.g. custom_attributes={"plan": "enterprise"}), as PUT
        /contacts/{id} does; `updated_at` moves to now unless given."""
        if self._generated_contact(contact_id) is None:
            raise KeyError(f"no contact {contact_id}")
        changes = self.contact_changes.setdefault(contact_id, {})
        changes.update(copy.deepcopy(fields))
        changes["updated_at"] = to_unix(fields["updated_at"]) if "updated_at" in fields else self._now()
        return self.contact(contact_id)  # type: ignore[return-value]

    def contacts_matching(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Every contact the query matches (on created_at / updated_at), by updated_at then id, as the contact
        search orders them. Generated contacts were all last updated an hour after sign-up, before the dataset
        starts, so a query for later changes only looks at the changed ones."""
        generated_until = self.config.start_ts + 3600
        if query.lower_updated is not None and query.lower_updated > generated_until:
            candidates = (self.contact(key) for key in self.contact_changes)
        else:
            candidates = (self.contact(self.contact_id(self.people.customer(index)))
                          for index in range(self.people.customer_count))
        found = [c for c in candidates if c is not None and query.matches(c["created_at"], c["updated_at"], 0)]
        return sorted(found, key=lambda contact: (contact["updated_at"], contact["id"]))

    def _generated_contact(self, contact_id: str) -> dict[str, Any] | None:
        customer = self._customer_for_contact(contact_id)
        if customer is None:
            return None
        signed_up = self.config.start_ts - customer.signed_up_offset_days * 86400
        company = customer.company
        name = customer.name if customer.email is not None or not customer.is_lead else None
        companies: list[dict[str, Any]] = []
        if company is not None:
            company_id = f"{mix64(self.seed * 31 + company.index) & 0xFFFFFFFFFFFF:012x}"
            companies.append({"type": "company", "id": company_id, "url": f"/companies/{company_id}"})
        return {
            "type": "contact",
            "id": contact_id,
            "workspace_id": self.config.intercom_app_id_code,
            "external_id": None if customer.is_lead else f"cust_{customer.index}",
            "role": "lead" if customer.is_lead else "user",
            "email": customer.email,
            "email_domain": customer.email.split("@", 1)[1] if customer.email else None,
            "phone": None,
            "name": name,
            "owner_id": None,
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": False,
            "created_at": signed_up,
            "updated_at": signed_up + 3600,
            "signed_up_at": None if customer.is_lead else signed_up,
            "last_seen_at": self.config.end_ts - (customer.index % 30) * 86400,
            "last_replied_at": None,
            "last_contacted_at": None,
            "last_email_opened_at": None,
            "last_email_clicked_at": None,
            "language_override": None,
            "browser": "chrome",
            "browser_language": "en",
            "os": "OS X",
            "location": {"type": "location", "country": customer.country, "region": None, "city": customer.city},
            "custom_attributes": {} if customer.plan_label is None else {"plan": customer.plan_label},
            "avatar": None,
            "tags": {"type": "list", "data": [], "url": f"/contacts/{contact_id}/tags", "total_count": 0,
                     "has_more": False},
            "notes": {"type": "list", "data": [], "url": f"/contacts/{contact_id}/notes", "total_count": 0,
                      "has_more": False},
            "companies": {"type": "list", "data": companies, "url": f"/contacts/{contact_id}/companies",
                          "total_count": len(companies), "has_more": False},
        }

    def _author(self, customer: Customer) -> dict[str, Any]:
        return {"type": "lead" if customer.is_lead else "user", "id": self.contact_id(customer),
                "name": customer.name if customer.email is not None or not customer.is_lead else None,
                "email": customer.email or ""}

    # ---- conversations ------------------------------------------------------------------------------------------

    def _base_conversation(self, rng: random.Random, index: int) -> dict[str, Any] | None:
        if index >= self.conversations.count:
            return None
        updated, created = self.conversations.stamps(index)
        return self._build(rng, FIRST_CONVERSATION_ID + index, created, updated)

    def _build(self, rng: random.Random, conversation_id: int, created: int, updated: int) -> dict[str, Any]:
        customer = self.people.pick_customer(rng)
        feedback = make_feedback(rng, customer.first_name, DISPLAY_PLAN[customer.tier])
        agent = pick(rng, AGENTS)
        agent_ref = {"type": "admin", "id": admin_id(agent.index), "name": agent.name, "email": agent.email}
        user_ref = self._author(customer)
        is_email = rng.random() < 0.3
        admin_initiated = rng.random() < 0.05
        state = pick(rng, ("closed", "closed", "closed", "open", "open", "snoozed"))
        if admin_initiated:
            source_author = agent_ref
            source_body = f"<p>Hi {customer.first_name}, how is the {feedback.topic.label} working out for you?</p>"
        else:
            source_author = user_ref
            source_body = feedback.html()
        # Fin answers first in some conversations (chat only); some workspaces' payloads carry numeric part ids.
        fin = not is_email and not admin_initiated and rng.random() < 0.15
        numeric_ids = rng.random() < 0.1
        parts = self._build_parts(rng, conversation_id, created, updated, feedback, agent, agent_ref, user_ref,
                                  admin_initiated, state, fin, numeric_ids)
        tags = [] if rng.random() < 0.2 else [_tag(name, created, agent_ref["id"]) for name in feedback.tags]
        rating = None
        if state == "closed" and rng.random() < 0.3:
            rating = {
                "rating": 5 if feedback.kind == "praise" else rng.randint(1, 5),
                "remark": pick(rng, (None, "Very helpful", "Slow answer", "Thanks!")),
                "created_at": updated,
                "contact": {"type": "contact", "id": user_ref["id"], "external_id": None},
                "teammate": {"type": "admin", "id": agent_ref["id"]},
            }
        first_admin_reply = next((p["created_at"] for p in parts if p["author"]["type"] == "admin"
                                  and p["part_type"] == "comment"), None)
        return {
            "type": "conversation",
            "id": str(conversation_id),
            "title": feedback.subject if is_email and rng.random() < 0.5 else None,
            "created_at": created,
            "updated_at": updated,
            "waiting_since": None if state == "closed" else updated,
            "snoozed_until": updated + 3 * 86400 if state == "snoozed" else None,
            "open": state != "closed",
            "state": state,
            "read": rng.random() < 0.8,
            "priority": "priority" if feedback.kind in ("bug", "complaint") and rng.random() < 0.3
            else "not_priority",
            "admin_assignee_id": int(agent_ref["id"]) if parts else None,
            "team_assignee_id": pick(rng, TEAM_IDS) if rng.random() < 0.6 else None,
            "tags": {"type": "tag.list", "tags": tags},
            "conversation_rating": rating,
            "source": {
                "type": "email" if is_email else "conversation",
                "id": str(900_000_000 + conversation_id),
                "delivered_as": "admin_initiated" if admin_initiated else "customer_initiated",
                "subject": feedback.subject if is_email else "",
                "body": source_body,
                "author": source_author,
                "attachments": [],
                "url": None if is_email else f"https://app.acmecloud.example/{feedback.topic.key}",
                "redacted": False,
            },
            "contacts": {"type": "contact.list", "contacts": [
                {"type": "contact", "id": user_ref["id"],
                 "external_id": None if customer.is_lead else f"cust_{customer.index}"}]},
            "teammates": {"type": "admin.list", "admins": [{"type": "admin", "id": agent_ref["id"]}]
                          if parts else []},
            "custom_attributes": {"Product area": feedback.topic.label} if rng.random() < 0.6 else {},
            "first_contact_reply": {"created_at": created, "type": "email" if is_email else "conversation",
                                    "url": None},
            "sla_applied": None,
            "statistics": {
                "type": "conversation_statistics",
                "time_to_assignment": 0 if parts else None,
                "time_to_admin_reply": first_admin_reply - created if first_admin_reply else None,
                "time_to_first_close": updated - created if state == "closed" else None,
                "first_contact_reply_at": created,
                "first_admin_reply_at": first_admin_reply,
                "last_contact_reply_at": max((p["created_at"] for p in parts if p["author"]["type"] != "admin"),
                                             default=created),
                "count_reopens": 0,
                "count_assignments": 1 if parts else 0,
                "count_conversation_parts": len(parts) + 1,
            },
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "ai_agent_participated": fin,
            "ai_agent": {
                "source_type": "workflow", "source_title": "Fin answers first",
                "last_answer_type": "ai_answer",
                "resolution_state": "routed_to_team" if len(parts) > 2 else "assumed_resolution",
                "rating": None, "rating_remark": None,
                "content_sources": {"type": "content_source.list", "total_count": 0, "content_sources": []},
            } if fin else None,
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts,
                                   "total_count": len(parts)},
        }

    def _build_parts(self, rng: random.Random, conversation_id: int, created: int, updated: int,
                     feedback: Feedback, agent, agent_ref: dict, user_ref: dict, admin_initiated: bool,
                     state: str, fin: bool = False, numeric_ids: bool = False) -> list[dict[str, Any]]:
        """The thread after the opening message, with the variety real inboxes have: Fin's answers, notes,
        assignments by rules (team) or away mode (bot), attribute updates and custom actions without a body, and
        customer replies that reopen a closed conversation (`open` parts carrying the customer's text)."""
        plan: list[tuple[str, str | None, dict, dict | None]] = []
        if admin_initiated:
            plan.append(("comment", feedback.html(), user_ref, None))
        if fin:
            plan.append(("comment", f"<p>{fin_answer(feedback)}</p>", fin_ref(self.config.intercom_app_id_code),
                         None))
            if rng.random() < 0.6:
                plan.append(("comment", f"<p>{follow_up(rng, feedback)}</p>", user_ref, None))
        count = rng.randint(0, 4)
        if count:
            roll = rng.random()
            if roll < 0.1:
                plan.append(("away_mode_assignment", None, fin_ref(self.config.intercom_app_id_code), None))
            elif roll < 0.25:
                plan.append(("assignment", None, team_ref(pick(rng, TEAM_IDS)), None))
            else:
                plan.append(("assignment", None, agent_ref, None))
        for step in range(count):
            roll = rng.random()
            if step % 2 == 0:
                if roll < 0.25:
                    plan.append(("note", f"<p>Internal: {pick(rng, ('checked logs', 'known issue', 'asked eng'))}"
                                         f" for {feedback.topic.label}.</p>", agent_ref, None))
                elif roll < 0.35:
                    name, values = pick(rng, _ATTRIBUTES)
                    value = pick(rng, values) if values else (feedback.topic.label if name == "Product area"
                                                              else f"PROJ-{conversation_id % 1000}")
                    plan.append(("conversation_attribute_updated_by_admin", None, agent_ref,
                                 {"attribute": {"name": name}, "value": {"name": value}}))
                elif roll < 0.4:
                    action = {"action": {"name": "Jira Create Issue"}}
                    plan.append(("custom_action_started", None, agent_ref, action))
                    plan.append(("custom_action_finished", None, agent_ref,
                                 {"action": {"name": "Jira Create Issue", "result": "success"}}))
                plan.append(("comment", f"<p>{short_reply(rng, feedback, agent.name.split()[0])}</p>", agent_ref,
                             None))
            elif roll < 0.2:
                # Closed, then the customer writes again: their reply is an `open` part.
                plan.append(("close", None, agent_ref, None))
                plan.append(("open", f"<p>{follow_up(rng, feedback)}</p>", user_ref, None))
            elif roll < 0.27:
                plan.append(("assign_and_reopen", None, agent_ref, None))
                plan.append(("comment", f"<p>{follow_up(rng, feedback)}</p>", user_ref, None))
            else:
                plan.append(("comment", f"<p>{follow_up(rng, feedback)}</p>", user_ref, None))
        if state == "closed" and plan:
            plan.append(("close", None, agent_ref, None))
        elif state == "snoozed" and plan:
            plan.append(("snoozed", None, agent_ref, None))
        parts = []
        # Parts are spread over the conversation's life; the last one is what set updated_at.
        for position, (part_type, body, author, details) in enumerate(plan, start=1):
            at = created + (updated - created) * position // len(plan)
            part = self._part(conversation_id, position, part_type, body, author, at, details)
            if numeric_ids:
                part["id"] = int(part["id"])
            parts.append(part)
        if rng.random() < 0.02:
            # Now and then a customer's message was redacted by an admin before any sync saw it.
            said = [p for p in parts if p["author"]["type"] in ("user", "lead") and p["body"] is not None]
            if said:
                said[-1].update(body=REDACTED_BODY, redacted=True, updated_at=updated)
        return parts

    @staticmethod
    def _part(conversation_id: int, position: int, part_type: str, body: str | None, author: dict,
              at: int, details: dict | None = None) -> dict[str, Any]:
        return {
            "type": "conversation_part",
            "id": str(conversation_id * 100 + position),
            "part_type": part_type,
            "body": body,
            "created_at": at,
            "updated_at": at,
            "notified_at": at,
            "assigned_to": ({"type": author["type"], "id": author["id"]}
                            if part_type in ("assignment", "away_mode_assignment", "assign_and_reopen") else None),
            "author": dict(author),
            "attachments": [],
            "external_id": None,
            "redacted": False,
            "metadata": {},
            "email_message_metadata": None,
            "state": "closed" if part_type == "close" else "snoozed" if part_type == "snoozed" else "open",
            "tags": [],
            "event_details": details,
            "app_package_code": None,
        }

    def conversation(self, conversation_id: str | int) -> dict[str, Any] | None:
        """A copy of the full current conversation, parts included."""
        try:
            numeric = int(conversation_id)
        except (TypeError, ValueError):
            return None
        if numeric in self.deleted:
            return None
        conversation = self.conversations.get(numeric)
        return copy.deepcopy(conversation) if conversation is not None else None

    # ---- ground truth for tests ---------------------------------------------------------------------------------

    def conversations_in_range(self, start: datetime | int | None = None,
                               end: datetime | int | None = None) -> list[str]:
        """Ids of the conversations created in [start, end) (either bound optional), ascending."""
        low = to_unix(start) if start is not None else None
        high = to_unix(end) if end is not None else None
        ids = [entry[1] for entry in self.conversations.all_entries()
               if (low is None or entry[2] >= low) and (high is None or entry[2] < high)
               and entry[1] not in self.deleted]
        return [str(i) for i in sorted(ids)]

    def all_conversation_ids(self) -> list[str]:
        return self.conversations_in_range()

    def shape_counts(self) -> dict[str, Counter[str]]:
        """How many conversations (and parts, and contacts) of each real-world shape the dataset holds: the ground
        truth behind the demo-data report (scripts/intercom_shapes.py) and the tests that every shape is there."""
        conversations: Counter[str] = Counter()
        part_types: Counter[str] = Counter()
        authors: Counter[str] = Counter()
        contacts: Counter[str] = Counter()
        seen_contacts: set[str] = set()
        for entry in self.conversations.all_entries():
            if entry[1] in self.deleted:
                continue
            conversation = self.conversations.record_for(entry)
            parts = conversation["conversation_parts"]["conversation_parts"]
            conversations["all"] += 1
            source = conversation["source"]
            if source["subject"] == "" and conversation["title"] is None:
                conversations["chat (subject \"\", title null)"] += 1
            if source["author"]["type"] not in ("user", "lead"):
                conversations["opened by the company"] += 1
            if conversation["ai_agent_participated"]:
                conversations["Fin participated"] += 1
            if any(isinstance(p["id"], int) for p in parts):
                conversations["numeric part ids"] += 1
            if any(p["part_type"] == "open" and p["author"]["type"] in ("user", "lead") for p in parts):
                conversations["customer reopened (open part with text)"] += 1
            if any(p["redacted"] for p in parts) or source.get("redacted"):
                conversations["redacted part"] += 1
            for part in parts:
                part_types[part["part_type"] + (" (null body)" if part["body"] is None else "")] += 1
                authors[part["author"]["type"]] += 1
            contact_id = conversation["contacts"]["contacts"][0]["id"]
            if contact_id not in seen_contacts:
                seen_contacts.add(contact_id)
                contact = self.contact(contact_id) or {}
                contacts["all"] += 1
                contacts[contact.get("role", "unknown")] += 1
                if not contact.get("custom_attributes"):
                    contacts["custom_attributes {}"] += 1
                if not (contact.get("companies") or {}).get("data"):
                    contacts["no companies"] += 1
        conversations["deleted"] = len(self.deleted)
        return {"conversations": conversations, "part types": part_types, "part authors": authors,
                "contacts": contacts}

    # ---- mutations ----------------------------------------------------------------------------------------------

    def update_conversation(self, conversation_id: str | int, **fields: Any) -> dict[str, Any]:
        """Replace top-level fields; updated_at moves to now unless given."""
        numeric = int(conversation_id)
        with self.conversations.lock:
            current = self.conversation(numeric)
            stamps = self.conversations.timestamps(numeric)
            if current is None or stamps is None:
                raise KeyError(f"no conversation {conversation_id}")
            return self._store(numeric, current, stamps[1], fields)

    def add_part(self, conversation_id: str | int, body: str | None, *, author_type: str = "user",
                 part_type: str = "comment") -> dict[str, Any]:
        """Append a part (a customer reply by default; author_type user, lead, admin, bot or team) and bump
        updated_at to now."""
        numeric = int(conversation_id)
        with self.conversations.lock:
            current = self.conversation(numeric)
            if current is None:
                raise KeyError(f"no conversation {conversation_id}")
            conversation = current
            now = self._now()
            if author_type == "admin":
                author = {"type": "admin", "id": admin_id(0), "name": AGENTS[0].name, "email": AGENTS[0].email}
            elif author_type == "bot":
                author = fin_ref(self.config.intercom_app_id_code)
            elif author_type == "team":
                author = team_ref(TEAM_IDS[0])
            else:
                contact_id = conversation["contacts"]["contacts"][0]["id"]
                customer = self._customer_for_contact(contact_id)
                author = self._author(customer) if customer else {"type": author_type, "id": contact_id,
                                                                   "name": None, "email": ""}
            part_list = conversation["conversation_parts"]
            part_list["conversation_parts"].append(
                self._part(numeric, len(part_list["conversation_parts"]) + 1, part_type, body, author, now))
            part_list["total_count"] = len(part_list["conversation_parts"])
            return self._store(numeric, conversation, self.conversations.timestamps(numeric)[1],  # type: ignore[index]
                               {"updated_at": now})

    def redact_part(self, conversation_id: str | int, part_id: str | int) -> dict[str, Any]:
        """Redact a part (or the opening message, part_id "source") as POST /conversations/redact does: the body
        becomes Intercom's "This message was deleted", `redacted` turns true and the part and the conversation are
        updated now. Returns the redacted part (or the source)."""
        numeric = int(conversation_id)
        with self.conversations.lock:
            conversation = self.conversation(numeric)
            if conversation is None:
                raise KeyError(f"no conversation {conversation_id}")
            now = self._now()
            if str(part_id) == "source":
                target = conversation["source"]
            else:
                target = next((p for p in conversation["conversation_parts"]["conversation_parts"]
                               if str(p["id"]) == str(part_id)), None)
                if target is None or target.get("body") is None:
                    raise KeyError(f"conversation {conversation_id} has no redactable part {part_id}")
                target["updated_at"] = now
            target["body"] = REDACTED_BODY
            target["redacted"] = True
            stamps = self.conversations.timestamps(numeric)
            assert stamps is not None
            self._store(numeric, conversation, stamps[1], {"updated_at": now})
            return copy.deepcopy(target)

    def delete_conversation(self, conversation_id: str | int) -> None:
        """Delete a conversation for good (DELETE /conversations/{id})."""
        numeric = int(conversation_id)
        with self.conversations.lock:
            if self.conversation(numeric) is None:
                raise KeyError(f"no conversation {conversation_id}")
            self.deleted.add(numeric)
            self.conversations.version += 1
            self.conversations._match_cache.clear()

    def add_conversation(self, **fields: Any) -> dict[str, Any]:
        """Start a conversation now (or at the given created_at); generated content unless given."""
        with self.conversations.lock:
            numeric = self.conversations.next_id()
            created = to_unix(fields["created_at"]) if "created_at" in fields else self._now()
            rng = record_rng(self.seed, SALT_ADDED, numeric)
            record = self._build(rng, numeric, created, created)
            return self._store(numeric, record, created, fields)

    def _store(self, numeric: int, record: dict[str, Any], created: int, fields: dict[str, Any]) -> dict:
        fields = dict(fields)
        updated = to_unix(fields.pop("updated_at")) if "updated_at" in fields else self._now()
        if "created_at" in fields:
            created = to_unix(fields.pop("created_at"))
        record.update(fields)
        record["created_at"] = created
        record["updated_at"] = updated
        self.conversations.put(numeric, record, updated, created)
        return record


# ---- search query ---------------------------------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[int, Any], bool]] = {
    "=": lambda value, target: value == target,
    "!=": lambda value, target: value != target,
    ">": lambda value, target: value > target,
    "<": lambda value, target: value < target,
    "IN": lambda value, target: value in target,
    "NIN": lambda value, target: value not in target,
}


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise BadRequest("value must be a unix timestamp", code="parameter_invalid")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return float(value) if "." in value else int(value)
    raise BadRequest(f"{value!r} is not a valid value for this field", code="parameter_invalid")


class SearchQuery:
    """A conversation search query: nested AND/OR of filters on created_at, updated_at and id."""

    def __init__(self, query: Any) -> None:
        if not isinstance(query, dict):
            raise BadRequest("query must be an object", code="parameter_invalid")
        self.signature = json.dumps(query, sort_keys=True)
        self._test = self._compile(query, depth=0)
        self.lower_updated, self.upper_updated = self._bounds(query)

    def matches(self, created: int, updated: int, record_id: int) -> bool:
        return self._test({"created_at": created, "updated_at": updated, "id": record_id})

    def _compile(self, node: dict[str, Any], depth: int) -> Callable[[dict[str, int]], bool]:
        operator = node.get("operator")
        if operator in ("AND", "OR"):
            if depth >= 3:
                raise BadRequest("too many nested filters", code="parameter_invalid")
            children = node.get("value")
            if not isinstance(children, list) or not children or not all(isinstance(c, dict) for c in children):
                raise BadRequest(f"{operator} needs a list of filters", code="parameter_invalid")
            tests = [self._compile(child, depth + 1) for child in children]
            if operator == "AND":
                return lambda row: all(test(row) for test in tests)
            return lambda row: any(test(row) for test in tests)
        field_name = node.get("field")
        if field_name not in _SEARCH_FIELDS:
            raise BadRequest(f"field {field_name!r} is not supported by this server", code="parameter_invalid")
        if operator not in _OPERATORS:
            raise BadRequest(f"operator {operator!r} is not supported", code="parameter_invalid")
        raw = node.get("value")
        if operator in ("IN", "NIN"):
            if not isinstance(raw, list):
                raise BadRequest("IN and NIN need a list value", code="parameter_invalid")
            target: Any = {_number(v) for v in raw}
        else:
            target = _number(raw)
        compare = _OPERATORS[operator]
        return lambda row: compare(row[field_name], target)

    @staticmethod
    def _bounds(query: dict[str, Any]) -> tuple[int | None, int | None]:
        """Inclusive updated_at bounds implied by a top-level AND (created_at <= updated_at always holds)."""
        filters = query.get("value") if query.get("operator") == "AND" else [query]
        lower: int | None = None
        upper: int | None = None
        for node in filters:
            if node.get("field") in ("updated_at", "created_at") and node.get("operator") == ">":
                bound = math.floor(_number(node["value"])) + 1
                lower = bound if lower is None else max(lower, bound)
            if node.get("field") == "updated_at" and node.get("operator") == "<":
                bound = math.ceil(_number(node["value"])) - 1
                upper = bound if upper is None else min(upper, bound)
        return lower, upper


def _search_cursor(key: tuple[int, int], page: int) -> str:
    return encode_cursor(f"{key[0]}:{key[1]}:{page}")


def _parse_search_cursor(cursor: Any) -> tuple[tuple[int, int], int]:
    if not isinstance(cursor, str):
        raise BadRequest("starting_after must be a string", code="parameter_invalid")
    match = re.fullmatch(r"(-?\d+):(-?\d+):(\d+)", decode_cursor(cursor))
    if not match:
        raise BadRequest("starting_after is invalid", code="parameter_invalid")
    return (int(match.group(1)), int(match.group(2))), int(match.group(3))


class IntercomApi(VendorApi):
    vendor = "intercom"

    config: EmulatorConfig
    data: IntercomDataset

    def authenticate(self, call: Call) -> Reply | None:
        return self.check_bearer(call, self.config.intercom_token, self.config.intercom_scopeless_tokens, "/me")

    def error(self, status: int, message: str | None = None, code: str | None = None) -> Reply:
        defaults = {
            400: ("parameter_invalid", "Invalid request"),
            401: ("unauthorized", "Access Token Invalid"),
            403: ("token_unauthorized", "Not authorized to access resource"),
            404: ("not_found", "Resource Not Found"),
            429: ("rate_limit_exceeded", "You have exceeded the rate limit. Please try again later."),
            500: ("server_error", "Server Error"),
            502: ("server_error", "Bad Gateway"),
            503: ("service_unavailable", "Service Unavailable"),
            504: ("server_error", "Gateway Timeout"),
        }
        default_code, default_message = defaults.get(status, ("server_error" if status >= 500 else "error",
                                                              f"HTTP {status}"))
        return Reply(status, {"type": "error.list", "request_id": request_id(),
                              "errors": [{"code": code or default_code, "message": message or default_message}]})

    def handle(self, call: Call) -> Reply:
        endpoint = call.endpoint
        if call.method == "GET" and endpoint == "/me":
            return Reply(200, self._me())
        if call.method == "POST" and endpoint == "/conversations/search":
            return self._search(call)
        if call.method == "POST" and endpoint == "/contacts/search":
            return self._search_contacts(call)
        match = re.fullmatch(r"/conversations/([^/]+)", endpoint)
        if call.method == "GET" and match:
            conversation = self._lookup(match.group(1))
            return self.error(404) if conversation is None else Reply(200, conversation)
        match = re.fullmatch(r"/contacts/([^/]+)", endpoint)
        if call.method == "GET" and match:
            contact = self.data.contact(match.group(1))
            return self.error(404) if contact is None else Reply(200, contact)
        return self.error(404)

    def _lookup(self, conversation_id: str) -> dict[str, Any] | None:
        if not conversation_id.isdigit() or int(conversation_id) in self.data.deleted:
            return None
        return self.data.conversations.get(int(conversation_id))

    def _me(self) -> dict[str, Any]:
        return {
            "type": "admin",
            "id": ME_ADMIN_ID,
            "email": "pat.morgan@acmecloud.example",
            "name": "Pat Morgan",
            "email_verified": True,
            "app": {"type": "app", "id_code": self.config.intercom_app_id_code, "name": "Acme Cloud",
                    "created_at": self.config.start_ts - 700 * 86400, "secure": False,
                    "identity_verification": False, "timezone": "Europe/London", "region": "US"},
            "avatar": {"type": "avatar", "image_url": None},
            "has_inbox_seat": True,
        }

    @staticmethod
    def _search_request(call: Call) -> tuple[SearchQuery, dict[str, Any], int]:
        """A search body's query, pagination and page size, refused as Intercom refuses them."""
        body = call.body
        if not isinstance(body, dict) or "query" not in body:
            raise BadRequest("query is required", code="parameter_not_found")
        query = SearchQuery(body["query"])
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise BadRequest("pagination must be an object")
        per_page = pagination.get("per_page", DEFAULT_PER_PAGE)
        if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
            raise BadRequest("per_page must be a positive integer")
        if per_page > MAX_PER_PAGE:
            raise BadRequest(f"per_page must be at most {MAX_PER_PAGE}", code="per_page_too_big")
        return query, pagination, per_page

    def _search(self, call: Call) -> Reply:
        query, pagination, per_page = self._search_request(call)
        sort = call.body.get("sort") or {"field": "updated_at", "order": "ascending"}
        if sort.get("field", "updated_at") != "updated_at" or sort.get("order", "ascending") != "ascending":
            raise BadRequest("this server sorts by updated_at ascending only")

        entries = self.data.conversations.matching(query.signature, query.matches, query.lower_updated,
                                                   query.upper_updated)
        if self.data.deleted:
            entries = [entry for entry in entries if entry[1] not in self.data.deleted]
        total = len(entries)
        starting_after = pagination.get("starting_after")
        if starting_after is not None:
            after_key, page = _parse_search_cursor(starting_after)
            start = _position_after(entries, after_key)
        else:
            after_key, page, start = None, 1, 0
        page_entries: list[Entry] = [] if call.empty_page else entries[start:start + per_page]
        conversations = []
        for entry in page_entries:
            record = dict(self.data.conversations.record_for(entry))
            record.pop("conversation_parts", None)
            conversations.append(record)
        pages: dict[str, Any] = {"type": "pages", "page": page, "per_page": per_page,
                                 "total_pages": math.ceil(total / per_page)}
        if call.empty_page:
            resume_key = after_key if after_key is not None else (-(1 << 62), -1)
            pages["next"] = {"page": page + 1, "starting_after": _search_cursor(resume_key, page + 1)}
        elif start + per_page < total:
            last = page_entries[-1]
            pages["next"] = {"page": page + 1, "starting_after": _search_cursor((last[0], last[1]), page + 1)}
        return Reply(200, {"type": "conversation.list", "total_count": total, "conversations": conversations,
                           "pages": pages})

    def _search_contacts(self, call: Call) -> Reply:
        """POST /contacts/search: a `list` of full contact objects, paged by `starting_after` like conversations."""
        query, pagination, per_page = self._search_request(call)
        contacts = self.data.contacts_matching(query)
        start, page = 0, 1
        if pagination.get("starting_after") is not None:
            match = re.fullmatch(r"contacts:(\d+):(\d+)", decode_cursor(str(pagination["starting_after"])))
            if not match:
                raise BadRequest("starting_after is invalid", code="parameter_invalid")
            start, page = int(match.group(1)), int(match.group(2))
        pages: dict[str, Any] = {"type": "pages", "page": page, "per_page": per_page,
                                 "total_pages": math.ceil(len(contacts) / per_page)}
        if start + per_page < len(contacts):
            pages["next"] = {"page": page + 1,
                             "starting_after": encode_cursor(f"contacts:{start + per_page}:{page + 1}")}
        return Reply(200, {"type": "list", "data": contacts[start:start + per_page], "total_count": len(contacts),
                           "pages": pages})


def _position_after(entries: list[Entry], key: tuple[int, int]) -> int:
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if (entries[mid][0], entries[mid][1]) > key:
            hi = mid
        else:
            lo = mid + 1
    return lo


# -- emulator vendor: settings, rate limits, webhooks ------------------------------------------------------------

from ...emulator.ratelimit import RateDecision, Scale, WindowLimiter  # noqa: E402
from ...emulator.vendor import EmulatorVendor, RateLimitProfile  # noqa: E402
from .emulator_webhooks import WEBHOOKS  # noqa: E402

DEMO_INTERCOM_TOKEN = "demo-intercom-token"
# The app's client secret, which signs deliveries.
DEMO_INTERCOM_CLIENT_SECRET = "demo-intercom-client-secret"

SETTINGS: dict[str, Any] = {
    "intercom_conversations": 800,
    "intercom_token": DEMO_INTERCOM_TOKEN,
    # Tokens that authenticate but lack the read scopes (answered 403 token_unauthorized).
    "intercom_scopeless_tokens": frozenset(),
    "intercom_app_id_code": "demoapp1",
    "intercom_client_secret": DEMO_INTERCOM_CLIENT_SECRET,
    # Requests per vendor minute (see EmulatorConfig.time_scale).
    "intercom_rate_limit": 10_000,
}


class IntercomLimiter:
    """Intercom spreads the per-minute allowance over six 10-second windows and sends no Retry-After."""

    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        self.window = WindowLimiter(math.ceil(config.intercom_rate_limit / 6), scale.seconds_per_minute / 6)

    def check(self, is_export: bool, now: float) -> RateDecision:
        allowed = self.window.has_room(now)
        if allowed:
            self.window.consume(now)
        reset_at = self.window.reset_at(now)
        headers = {
            "X-RateLimit-Limit": str(self.window.limit),
            "X-RateLimit-Remaining": str(self.window.remaining(now)),
            "X-RateLimit-Reset": self.scale.instant(reset_at),
        }
        return RateDecision(allowed, headers, None if allowed else reset_at - now)


def _fixed_headers(is_export: bool, limit: str, remaining: int, reset_at: float, reset_in: float) -> dict[str, str]:
    # A 429 carries only X-RateLimit-Reset (a unix time), no Retry-After.
    return {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": f"{reset_at:.3f}"}


def _injected_429_headers(reset_at: float) -> dict[str, str]:
    return {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{reset_at:.3f}"}


VENDOR = EmulatorVendor(
    name="intercom",
    dataset=IntercomDataset,
    api=IntercomApi,
    base_path=lambda config: "/intercom",
    record_count=lambda config: config.intercom_conversations,
    settings=SETTINGS,
    rate_limits=RateLimitProfile(
        limiter=IntercomLimiter, fixed_headers=_fixed_headers, injected_429_headers=_injected_429_headers,
    ),
    webhooks=WEBHOOKS,
)
