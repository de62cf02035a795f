"""Accounts: the company behind a piece of feedback, whichever person wrote it and whichever tool they used.

A record's account is, in order:
1. its customer's e-mail domain (`acme.com`), unless that is a free-mail provider such as gmail.com;
2. the vendor's organization id (the metadata key each source's `AccountTraits` names, when its mapper provides one),
   as `org:<source>:<id>`;
3. the person: `person:<email>`, else `person:<source>:<customer id>`;
4. nobody known (an anonymous survey answer): `anonymous:<source>:<record id>`, so each counts once.

A manual merge maps one key (an alias) to another account, for what no rule can see: a company with two domains,
a vendor's organization whose people write from gmail.com. Merges live in `account_merges` and are resolved when
they are made, so a lookup is one join, never a chain.

The key is an SQL expression over the row (`account_key_sql`), so the Demand view groups a million records by
account without a Python loop; `account_key` is the same rule in Python, and the tests hold the two to each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .sources import builtin_specs

if TYPE_CHECKING:  # the store keeps a frozen copy of ACCOUNT_KEY_MIGRATION: neither imports the other at run time
    from .store import Store

# Consumer mailbox providers: an address there says nothing about the company. Exact domains, then families whose
# country variants share a first label (yahoo.co.uk, hotmail.fr, gmx.net, yandex.com).
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    """
    gmail.com googlemail.com outlook.com hotmail.com live.com msn.com passport.com yahoo.com ymail.com
    rocketmail.com icloud.com me.com mac.com aol.com aim.com proton.me protonmail.com protonmail.ch pm.me
    web.de mail.ru inbox.ru list.ru bk.ru rambler.ru ya.ru yandex.ru qq.com foxmail.com 163.com 126.com yeah.net
    sina.com sina.cn sohu.com aliyun.com naver.com hanmail.net daum.net nate.com mail.com email.com usa.com
    gmx.com gmx.de gmx.net gmx.at gmx.ch zoho.com zohomail.com fastmail.com fastmail.fm hey.com tutanota.com
    tuta.io mailbox.org posteo.de posteo.net hushmail.com t-online.de freenet.de orange.fr wanadoo.fr free.fr
    sfr.fr laposte.net libero.it virgilio.it tiscali.it alice.it seznam.cz wp.pl o2.pl interia.pl onet.pl
    rediffmail.com bol.com.br uol.com.br terra.com.br comcast.net verizon.net att.net sbcglobal.net cox.net
    charter.net earthlink.net btinternet.com sky.com virginmedia.com ntlworld.com talktalk.net bigpond.com
    optusnet.com.au shaw.ca rogers.com sympatico.ca telus.net
    """.split()
)
FREE_MAIL_FAMILIES: tuple[str, ...] = ("gmx.", "yahoo.", "hotmail.", "outlook.", "live.", "yandex.", "windowslive.")

# Where each built-in source's mapper puts the customer's organization id (and name) in a record's metadata, from its
# spec's AccountTraits. Built-in sources only: the account key is a column the schema computes, so it cannot change
# when a plugin is installed.
ORGANIZATION_FIELDS: dict[str, str] = {
    spec.name: spec.accounts.organization_id_field for spec in builtin_specs() if spec.accounts.organization_id_field
}
ORGANIZATION_NAME_FIELDS: dict[str, str] = {
    spec.name: spec.accounts.organization_name_field
    for spec in builtin_specs()
    if spec.accounts.organization_name_field
}

# SQLite's lower() folds ASCII only; the Python rule folds exactly the same letters so both agree on every key.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class MergeError(ValueError):
    """A merge that cannot be made (into itself, or into an account merged away)."""


# -- the rule in Python --------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def email_domain(email: str | None) -> str | None:
    """The lower-cased part after the first @, or None when there is none. (Mirrors the SQL: trim spaces only.)"""
    if not email:
        return None
    at = email.find("@")
    if at < 0:
        return None
    domain = _fold(email[at + 1 :].strip(" "))
    return domain or None


def is_free_mail(domain: str) -> bool:
    # A family matches on the first label only (gmx.net, yahoo.co.uk), exactly as the SQL rule does.
    return domain in FREE_MAIL_DOMAINS or domain[: domain.find(".") + 1] in FREE_MAIL_FAMILIES


def organization_id(source: str, metadata: Mapping[str, Any] | None) -> str | None:
    field = ORGANIZATION_FIELDS.get(source)
    if field is None or not metadata:
        return None
    value = metadata.get(field)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, str)):
        text = str(value)
        return text or None
    return None


def account_key(
    source: str,
    source_id: str,
    customer_email: str | None,
    customer_id: str | None,
    metadata: Mapping[str, Any] | None,
) -> str:
    """The account of one record, before manual merges."""
    domain = email_domain(customer_email)
    if domain is not None and not is_free_mail(domain):
        return domain
    organization = organization_id(source, metadata)
    if organization is not None:
        return f"org:{source}:{organization}"
    if customer_email:
        return "person:" + _fold(customer_email.strip(" "))
    if customer_id:
        return f"person:{source}:{customer_id}"
    return f"anonymous:{source}:{source_id}"


# -- the same rule in SQL ------------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def account_key_sql(alias: str | None = "feedback") -> str:
    """An SQL expression equal to `account_key` for each row of `feedback` (columns under `alias`, or bare).

    Bare column names make it usable as a generated column (see ACCOUNT_KEY_MIGRATION). The metadata JSON is only
    parsed when the address is missing or free mail and the source has organizations.
    """
    column = (lambda name: f"{alias}.{name}") if alias else (lambda name: name)
    email, source, metadata = column("customer_email"), column("source"), column("metadata")
    domain = f"lower(trim(substr({email}, instr({email}, '@') + 1), ' '))"
    # Membership by substring search in ",a.com,b.com," lists, one list per first letter: an IN list is rebuilt as a
    # lookup table each time an INSERT computes the column, and one long list makes instr() scan 1.5 kB a row.
    # A domain holding a comma is never free mail (no list entry has one), so it cannot match across entries.
    by_letter: dict[str, list[str]] = {}
    for name in sorted(FREE_MAIL_DOMAINS):
        by_letter.setdefault(name[0], []).append(name)
    lists = " ".join(
        f"WHEN {_quoted(letter)} THEN {_quoted(',' + ','.join(names) + ',')}" for letter, names in by_letter.items()
    )
    families = _quoted("," + ",".join(sorted(FREE_MAIL_FAMILIES)) + ",")
    first_label = f"substr({domain}, 1, instr({domain}, '.'))"
    free = (
        f"instr({domain}, ',') = 0 AND ("
        f"instr(CASE substr({domain}, 1, 1) {lists} ELSE '' END, ',' || {domain} || ',') > 0"
        f" OR (instr({domain}, '.') > 0 AND instr({families}, ',' || {first_label} || ',') > 0))"
    )

    def per_source(template: str) -> str:
        cases = " ".join(
            f"WHEN {source} = {_quoted(name)} THEN {template.format(path=_quoted('$.' + field))}"
            for name, field in ORGANIZATION_FIELDS.items()
        )
        return f"CASE {cases} END"

    # json_type tells an id (integer or text) from true/false, which json_extract would hand back as 1/0.
    organization_kind = per_source(f"json_type({metadata}, {{path}})")
    organization = per_source(f"CAST(json_extract({metadata}, {{path}}) AS TEXT)")
    return (
        "(CASE"
        f" WHEN instr({email}, '@') > 0 AND {domain} <> '' AND NOT ({free}) THEN {domain}"
        f" WHEN json_valid({metadata}) AND {organization_kind} IN ('integer', 'text') AND {organization} <> ''"
        f" THEN 'org:' || {source} || ':' || {organization}"
        f" WHEN {email} <> '' THEN 'person:' || lower(trim({email}, ' '))"
        f" WHEN {column('customer_id')} <> '' THEN 'person:' || {source} || ':' || {column('customer_id')}"
        f" ELSE 'anonymous:' || {source} || ':' || {column('source_id')} END)"
    )


# The account key as an indexed virtual column: the Demand view reads it from idx_feedback_accounts instead of
# evaluating the rule per row (about 10 us a row: seconds on a quarter of a million records). The domain is a column
# of its own because an INSERT computes generated columns once, in order, and the key then reads the domain's value
# instead of re-deriving it at each of its eight uses (11 us a stored record, down to under 2).
# The free-mail list is part of this schema: changing FREE_MAIL_DOMAINS or ORGANIZATION_FIELDS needs a new migration
# that drops and re-adds the columns (test_accounts pins the text shipped here).
_DOMAIN_SQL = "lower(trim(substr(customer_email, instr(customer_email, '@') + 1), ' '))"
ACCOUNT_KEY_MIGRATION = f"""
        ALTER TABLE feedback ADD COLUMN customer_domain TEXT GENERATED ALWAYS AS (
            CASE WHEN instr(customer_email, '@') > 0 THEN {_DOMAIN_SQL} END) VIRTUAL;
        ALTER TABLE feedback ADD COLUMN account_key TEXT GENERATED ALWAYS AS
            {account_key_sql(None).replace(_DOMAIN_SQL, "customer_domain")} VIRTUAL;
        CREATE INDEX idx_feedback_accounts ON feedback (created_at, account_key, customer_tier, category, source);
"""


# -- manual merges -------------------------------------------------------------------------------------------------

def resolved_account_sql(alias: str = "feedback", *, with_merges: bool = True) -> str:
    """The account after manual merges (a correlated lookup of the small merges table, by primary key)."""
    key = account_key_sql(alias)
    if not with_merges:
        return key
    return f"COALESCE((SELECT m.account FROM account_merges m WHERE m.alias = {key}), {key})"


@dataclass(frozen=True)
class Merge:
    alias: str
    account: str
    created_at: str


def merge(store: Store, alias: str, into: str) -> Merge:
    """Count everything under `alias` as `into` from now on. Earlier merges into `alias` follow it to `into`."""
    alias, into = alias.strip(), into.strip()
    if not alias or not into:
        raise MergeError("Name both the account to merge and the account to merge it into.")
    if alias == into:
        raise MergeError("An account cannot be merged into itself.")
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")[:19] + "Z"
    target = store.merge_account(alias, into, created_at)  # merged-away targets resolve to where they went
    if target == alias:
        raise MergeError(f"{into} is already merged into {alias}; undo that merge first.")
    return Merge(alias, target, created_at)


def unmerge(store: Store, alias: str) -> bool:
    """Undo a merge; True when there was one."""
    return store.unmerge_account(alias.strip())


def merges(store: Store) -> list[Merge]:
    if not store.has_account_merges_table():
        return []
    return [Merge(*row) for row in store.account_merge_rows()]


def import_merges(store: Store, pairs: Iterable[tuple[str, str]]) -> list[Merge]:
    return [merge(store, alias, into) for alias, into in pairs]


@dataclass(frozen=True)
class Suggestion:
    """An organization whose people mostly write from one company domain: likely the same account."""

    alias: str
    account: str
    records: int  # records of the organization written from that domain
    organization_records: int  # records of the organization written from a company domain at all


def suggested_merges(store: Store, *, min_share: float = 0.5) -> list[Suggestion]:
    """Organization keys in use whose colleagues on a company domain point to one account.

    A vendor's organization becomes an account of its own only through people writing from free mail; the same
    organization's other people write from the company's domain. Reads every record of the sources with
    organizations (a full pass over their metadata), so it runs on request, not with each view.
    """
    suggestions: list[Suggestion] = []
    merged = {m.alias for m in merges(store)}
    in_use = store.organization_keys_in_use()
    for source, field in ORGANIZATION_FIELDS.items():
        rows = store.organization_domains(source, field)
        by_org: dict[str, list[tuple[str, int]]] = {}
        for org, domain, count in rows:
            by_org.setdefault(str(org), []).append((str(domain), int(count)))
        for org, domains in sorted(by_org.items()):
            alias = f"org:{source}:{org}"
            if alias in merged or alias not in in_use:
                continue
            domain, count = min(domains, key=lambda item: (-item[1], item[0]))
            total = sum(n for _, n in domains)
            if count / total >= min_share:
                suggestions.append(Suggestion(alias, domain, count, total))
    return suggestions


# -- presenting accounts ---------------------------------------------------------------------------------------------

ACCOUNT_KINDS = {"org": "organization", "person": "person", "anonymous": "anonymous"}


def account_kind(key: str) -> str:
    """domain, organization, person or anonymous."""
    prefix = key.split(":", 1)[0] if ":" in key else ""
    return ACCOUNT_KINDS.get(prefix, "domain")


def account_label(key: str, organization_name: str | None = None) -> str:
    """How a person reads an account key: the domain, the organization's name, the person's address."""
    kind = account_kind(key)
    if kind == "domain":
        return key
    if kind == "organization":
        _, source, ident = key.split(":", 2)
        where = f"{source} organization {ident}"
        return f"{organization_name} ({where})" if organization_name else where
    if kind == "person":
        rest = key[len("person:") :]
        if "@" in rest:
            return rest
        source, _, ident = rest.partition(":")
        return f"{source} customer {ident}"
    return "anonymous respondent"


def organization_names(store: Store, keys: Iterable[str]) -> dict[str, str]:
    """The vendor's name for each organization key, read from one record of that organization."""
    names: dict[str, str] = {}
    for key in keys:
        if account_kind(key) != "organization":
            continue
        _, source, ident = key.split(":", 2)
        field, name_field = ORGANIZATION_FIELDS.get(source), ORGANIZATION_NAME_FIELDS.get(source)
        if field is None or name_field is None:
            continue
        name = store.organization_name(source, field, name_field, ident)
        if isinstance(name, str) and name.strip():
            names[key] = name.strip()
    return names


def metadata_of(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("metadata")
    if isinstance(raw, dict):
        return raw
    try:
        loaded = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
