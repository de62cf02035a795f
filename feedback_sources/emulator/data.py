"""Deterministic building blocks for the emulated datasets.

Every record is derived from (seed, salt, index) alone, so a 200k-ticket dataset costs nothing until a page of it
is asked for, and the same seed always yields the same words, people and timestamps.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_MASK64 = (1 << 64) - 1

# Salts keep the random streams of different record kinds independent of each other.
SALT_COMPANY = 1
SALT_CUSTOMER = 2
SALT_TICKET = 3
SALT_CONVERSATION = 4
SALT_RESPONSE = 5
SALT_ADDED = 6
SALT_TIMELINE = 7


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def unit_interval(seed: int, salt: int, index: int) -> float:
    """A uniform float in [0, 1) that depends only on its arguments."""
    return mix64(((seed * 1_000_003 + index) ^ (salt << 56)) & _MASK64) / 18446744073709551616.0


def record_rng(seed: int, salt: int, index: int) -> random.Random:
    """The random stream of one record; independent of every other record's."""
    return random.Random(mix64(((seed * 1_000_003 + index) ^ (salt << 48)) & _MASK64))


class BlockCache:
    """Records generated in blocks that share one random stream, with the most recent blocks kept.

    Seeding a Mersenne Twister costs more than building a whole record, so records come in blocks of
    `block_size` drawn from one stream seeded by (seed, salt, block). A record still depends only on
    (seed, salt, index): its block is always generated whole and in order.
    """

    def __init__(self, seed: int, salt: int, build: Callable[[random.Random, int], Any], *, block_size: int = 32,
                 max_blocks: int = 128) -> None:
        self.seed = seed
        self.salt = salt
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._build = build
        self._blocks: OrderedDict[int, list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index: int) -> Any:
        block_number, offset = divmod(index, self.block_size)
        with self._lock:
            block = self._blocks.get(block_number)
            if block is not None:
                self._blocks.move_to_end(block_number)
                return block[offset]
        rng = record_rng(self.seed, self.salt, block_number)
        first = block_number * self.block_size
        block = [self._build(rng, first + k) for k in range(self.block_size)]
        with self._lock:
            self._blocks[block_number] = block
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)
        return block[offset]


def pick(rng: random.Random, options: tuple | list):
    # Cheaper than rng.choice on hot paths, same distribution.
    return options[int(rng.random() * len(options))]


def to_unix(value: datetime | int | float) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    return int(value)


def utc_z_time(ts: int) -> str:
    """ISO 8601 in UTC with a "Z", to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def offset_time(ts: int) -> str:
    """ISO 8601 with an explicit UTC offset ("+00:00"), as some vendors write dates."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


# --------------------------------------------------------------------------------------------------------------
# Feedback vocabulary. Each topic carries (subject, sentence) pairs per kind of feedback.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    key: str
    tag: str
    label: str
    bugs: tuple[tuple[str, str], ...]
    features: tuple[tuple[str, str], ...]
    questions: tuple[tuple[str, str], ...]
    praise: tuple[tuple[str, str], ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "csv_export", "export", "CSV export",
        bugs=(
            ("CSV export times out on large reports",
             "The CSV export times out on any report with more than about 50,000 rows"),
            ("Exported CSV drops leading zeros",
             "Exported CSV files drop the leading zeros from our ZIP codes and account numbers"),
            ("Garbled characters in CSV export",
             "Accented characters like é and ü come out garbled when I open the export in Excel"),
        ),
        features=(
            ("Scheduled CSV exports",
             "We would love to schedule a CSV export every Monday morning instead of clicking Export by hand"),
            ("Choose columns in CSV export",
             "Please let us pick which columns go into the CSV export"),
        ),
        questions=(
            ("How do I export all records to CSV?",
             "How do I export all records to CSV, not only the first page?"),
            ("Is there a row limit on exports?",
             "Is there a row limit on exports, and can it be raised on our plan?"),
        ),
        praise=(("Export is so much faster now",
                 "The new export is so much faster, our finance team noticed right away"),),
    ),
    Topic(
        "sso", "sso", "SSO",
        bugs=(
            ("SAML login loops back to sign-in page",
             "Our Okta SAML login redirects back to the sign-in page in an endless loop"),
            ("SSO users lose their role after login",
             "Users who sign in through SSO lose their admin role every time they log in"),
        ),
        features=(
            ("SCIM provisioning for Azure AD",
             "We need SCIM provisioning with Azure AD so offboarding happens automatically"),
            ("Enforce SSO for all members",
             "Please add a setting to enforce SSO for every member of the workspace"),
        ),
        questions=(
            ("Does SSO work with Google Workspace?",
             "Does single sign-on work with Google Workspace, or only with Okta and Azure AD?"),
        ),
        praise=(("SSO setup was painless",
                 "Setting up SSO took ten minutes, the guide was excellent"),),
    ),
    Topic(
        "billing", "billing", "billing",
        bugs=(
            ("Charged twice this month",
             "We were charged twice for the same monthly invoice"),
            ("Invoice shows the wrong VAT number",
             "The invoice PDF shows the wrong VAT number even after I updated it in settings"),
        ),
        features=(
            ("Pay by invoice instead of card",
             "Could we pay annually by bank transfer instead of by credit card?"),
        ),
        questions=(
            ("How do I update our credit card?",
             "How do I update the credit card on file? The old one expires this month"),
            ("Prorated charges when adding seats?",
             "Are we charged a prorated amount when we add seats in the middle of the billing cycle?"),
        ),
        praise=(("Thanks for the quick refund",
                 "Thanks for sorting out the refund so quickly"),),
    ),
    Topic(
        "mobile_app", "mobile_app", "mobile app",
        bugs=(
            ("iOS app crashes when opening dashboards",
             "The iOS app crashes as soon as I open a dashboard on my iPhone 15"),
            ("Android push notifications arrive hours late",
             "Push notifications on Android arrive hours after the event"),
        ),
        features=(
            ("Offline mode for the mobile app",
             "An offline mode in the mobile app would help our field team a lot"),
            ("Dark mode on mobile",
             "Please add dark mode to the mobile app"),
        ),
        questions=(
            ("Is there an iPad version?",
             "Is there an iPad version of the app, or only the phone app?"),
        ),
        praise=(("Love the new mobile app",
                 "The redesigned mobile app is fantastic, much easier to use on the go"),),
    ),
    Topic(
        "performance", "performance", "performance",
        bugs=(
            ("Dashboard takes 20 seconds to load",
             "The main dashboard takes around 20 seconds to load since last week"),
            ("App is very slow in the afternoon",
             "Everything becomes very slow in the afternoon (European time)"),
        ),
        features=(
            ("Faster loading for big workspaces",
             "Large workspaces like ours need pagination or lazy loading in the project list"),
        ),
        questions=(
            ("Is there a status page?",
             "Is there a status page we can subscribe to for performance incidents?"),
        ),
        praise=(("Performance is much better",
                 "Whatever you changed last release, the app feels twice as fast"),),
    ),
    Topic(
        "integrations", "integrations", "integrations",
        bugs=(
            ("Slack integration stopped posting",
             "The Slack integration stopped posting updates to our channel"),
            ("Salesforce sync creates duplicate contacts",
             "The Salesforce sync creates duplicate contacts every night"),
        ),
        features=(
            ("Jira integration",
             "A two-way Jira integration would save our engineers a lot of copy and paste"),
            ("HubSpot integration",
             "Please add a native HubSpot integration"),
        ),
        questions=(
            ("Can we connect Microsoft Teams?",
             "Can we send notifications to Microsoft Teams instead of Slack?"),
        ),
        praise=(("Zapier integration works great",
                 "The Zapier integration works great for our workflows"),),
    ),
    Topic(
        "notifications", "notifications", "notifications",
        bugs=(
            ("Email notifications sent twice",
             "Every email notification is sent to me twice"),
        ),
        features=(
            ("Daily digest instead of single emails",
             "I would prefer one daily digest instead of an email for every change"),
        ),
        questions=(
            ("How do I turn off notifications for a project?",
             "How can I mute notifications for a single project?"),
        ),
        praise=(("Notification settings are great",
                 "The new notification settings are exactly what we needed"),),
    ),
    Topic(
        "dashboards", "dashboards", "dashboards",
        bugs=(
            ("Dashboard charts show wrong totals",
             "The totals on the revenue chart do not match the numbers in the table below it"),
        ),
        features=(
            ("Share dashboards with external viewers",
             "We want to share a read-only dashboard with clients who have no account"),
            ("Custom date ranges on dashboards",
             "Please allow custom date ranges on dashboards, not only last 7/30/90 days"),
        ),
        questions=(
            ("Can I embed a dashboard in Notion?",
             "Is it possible to embed a dashboard in Notion or Confluence?"),
        ),
        praise=(("New dashboards look amazing",
                 "The new dashboards look amazing, our leadership team loves them"),),
    ),
    Topic(
        "permissions", "permissions", "user permissions",
        bugs=(
            ("Viewers can edit reports",
             "Users with the Viewer role can still edit and delete reports"),
        ),
        features=(
            ("Custom roles",
             "We need custom roles, the three built-in roles are not granular enough"),
        ),
        questions=(
            ("How do I transfer ownership?",
             "How do I transfer workspace ownership to a colleague who is leaving?"),
        ),
        praise=(("Audit log is very useful",
                 "The audit log made our security review so much easier"),),
    ),
    Topic(
        "api", "api", "API",
        bugs=(
            ("API returns 500 on bulk update",
             "The bulk update endpoint returns a 500 error when I send more than 100 items"),
            ("Webhooks stopped firing",
             "Our webhooks stopped firing yesterday, nothing shows in the delivery log"),
        ),
        features=(
            ("Higher API rate limits",
             "Our nightly sync hits the API rate limit, please offer a higher limit"),
        ),
        questions=(
            ("Where can I find the API docs for webhooks?",
             "Where can I find the API documentation for webhook signatures?"),
        ),
        praise=(("Great API documentation",
                 "Your API documentation is the best I have worked with"),),
    ),
    Topic(
        "search", "search", "search",
        bugs=(
            ("Search does not find archived items",
             "Search does not return anything from archived projects"),
        ),
        features=(
            ("Search inside attachments",
             "It would be very helpful if search also looked inside PDF attachments"),
        ),
        questions=(
            ("Does search support exact phrases?",
             "Does search support exact phrases with quotes?"),
        ),
        praise=(("Search is really fast",
                 "Search is really fast now, thanks"),),
    ),
    Topic(
        "onboarding", "onboarding", "onboarding",
        bugs=(
            ("Invitation emails never arrive",
             "The invitation emails for new teammates never arrive, not even in spam"),
        ),
        features=(
            ("Bulk invite from a CSV file",
             "Let us invite a whole team at once by uploading a CSV file"),
        ),
        questions=(
            ("Can we get a demo for our team?",
             "Could someone walk our team through the product in a short demo?"),
        ),
        praise=(("Onboarding was smooth",
                 "Onboarding was smooth, the checklist made it easy to get started"),),
    ),
)

KINDS = ("bug", "feature_request", "question", "praise", "complaint")
KIND_WEIGHTS = (30, 25, 25, 10, 10)
_KIND_CUMULATIVE = tuple(sum(KIND_WEIGHTS[: i + 1]) for i in range(len(KIND_WEIGHTS)))

_BUG_DETAILS = (
    "It started after last week's update.",
    "It happens every time, in Chrome and in Firefox.",
    "Three people on my team can reproduce it.",
    "Steps: open the page, click the button, wait a few seconds.",
    "I cleared the cache and tried an incognito window, same result.",
    "Screenshot attached.",
)
_IMPACT = (
    "This is blocking our month-end close.",
    "Not urgent, but it is annoying.",
    "We need this fixed before our board meeting on Friday.",
    "Our whole support team is affected.",
    "",
)
_COMPLAINT_OPENERS = (
    "This is the third time I am writing about this.",
    "Honestly, I am frustrated.",
    "I expected better from a paid product.",
    "Still not fixed.",
)
_COMPLAINT_CLOSERS = (
    "If this is not fixed soon we will have to look at alternatives.",
    "Please escalate this.",
    "We are paying for this and it does not work.",
)
_FEATURE_OPENERS = ("Feature request:", "Idea:", "Any plans for this?", "Suggestion from our team:", "")
_FEATURE_REASONS = (
    "We would use it every day.",
    "Competitors already offer this.",
    "It would save us hours every week.",
    "Happy to join a beta.",
)
_QUESTION_CONTEXT = ("I could not find it in the help center.", "Thanks in advance!", "", "We are new to the product.")
_PRAISE_CLOSERS = ("Keep up the good work!", "Thank you!", "Great job, team.", "")
_GREETINGS = ("Hi team,", "Hello,", "Hey there,", "Hi,", "Good morning,", "")
_SIGNOFFS = ("Thanks,", "Cheers,", "Best regards,", "Thank you,", "")
# A few records carry unicode, markup and spreadsheet formulas so consumers have to handle them.
_SPICE = (
    "Merci beaucoup 🙏",
    "Grüße aus München — danke!",
    "ありがとうございます。",
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "=HYPERLINK(\"http://example.com\",\"click\")",
    "Tabs\tand\nnew lines & <b>bold</b> text",
)


def pick_kind(rng: random.Random) -> str:
    roll = rng.random() * _KIND_CUMULATIVE[-1]
    for kind, bound in zip(KINDS, _KIND_CUMULATIVE):
        if roll < bound:
            return kind
    return KINDS[-1]


@dataclass(frozen=True, slots=True)
class Feedback:
    kind: str
    topic: Topic
    subject: str
    paragraphs: tuple[str, ...]

    @property
    def tags(self) -> list[str]:
        return [self.kind, self.topic.tag]

    def plain_text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def html(self) -> str:
        return "".join(f"<p>{_escape_html(p)}</p>" for p in self.paragraphs)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_feedback(rng: random.Random, first_name: str, plan: str, kind: str | None = None,
                  topic: Topic | None = None) -> Feedback:
    kind = kind or pick_kind(rng)
    topic = topic or pick(rng, TOPICS)
    parts: list[str] = []
    greeting = pick(rng, _GREETINGS)
    if greeting:
        parts.append(greeting)
    if kind in ("bug", "complaint"):
        subject, sentence = pick(rng, topic.bugs)
        if kind == "complaint":
            parts.append(pick(rng, _COMPLAINT_OPENERS) + " " + sentence + ".")
            parts.append(pick(rng, _COMPLAINT_CLOSERS) + f" We are on the {plan} plan.")
            subject = pick(rng, ("Still broken: ", "Unacceptable: ", "Again: ", "")) + subject
        else:
            parts.append(sentence + ". " + pick(rng, _BUG_DETAILS))
            impact = pick(rng, _IMPACT)
            if impact:
                parts.append(impact)
            if rng.random() < 0.15:
                subject = "Urgent: " + subject
    elif kind == "feature_request":
        subject, sentence = pick(rng, topic.features)
        opener = pick(rng, _FEATURE_OPENERS)
        parts.append((opener + " " if opener else "") + sentence + ". " + pick(rng, _FEATURE_REASONS))
        if rng.random() < 0.5:
            subject = "Feature request: " + subject
    elif kind == "question":
        subject, sentence = pick(rng, topic.questions)
        context = pick(rng, _QUESTION_CONTEXT)
        parts.append(sentence + (" " + context if context else ""))
    else:
        subject, sentence = pick(rng, topic.praise)
        closer = pick(rng, _PRAISE_CLOSERS)
        parts.append(sentence + "." + (" " + closer if closer else ""))
    if rng.random() < 0.04:
        parts.append(pick(rng, _SPICE))
    signoff = pick(rng, _SIGNOFFS)
    if signoff:
        parts.append(f"{signoff}\n{first_name}")
    if rng.random() < 0.1:
        subject = subject.lower()
    return Feedback(kind, topic, subject, tuple(parts))


def short_reply(rng: random.Random, feedback: Feedback, agent_first_name: str) -> str:
    lines = {
        "bug": ("Thanks for reporting this, I have passed it to our engineers.",
                "I could reproduce this and opened a bug for the team.",
                "Sorry about that! A fix is rolling out this week."),
        "complaint": ("I am sorry for the trouble, I have escalated this to the product team.",
                      "I understand the frustration, let me look into it right away."),
        "feature_request": ("Great idea, I have added your vote to the request.",
                            "Thanks for the suggestion, I shared it with our product manager."),
        "question": ("Good question! You can find this under Settings > Workspace.",
                     "Here is a help article that walks through it step by step."),
        "praise": ("Thank you so much, I will share this with the team!",
                   "That made our day, thanks for the kind words."),
    }[feedback.kind]
    return f"{pick(rng, lines)} {agent_first_name}"


def follow_up(rng: random.Random, feedback: Feedback) -> str:
    return pick(rng, (
        "Any update on this?",
        "Thanks, that worked!",
        "It is still happening for us today.",
        "Great, looking forward to it.",
        "One more detail: it only happens for users in our EU workspace.",
        "Could you also check the " + feedback.topic.label + " settings on our account?",
    ))


# --------------------------------------------------------------------------------------------------------------
# People: companies and customers shared by all vendors (the same person can write to several of them).
# --------------------------------------------------------------------------------------------------------------

TIERS = ("enterprise", "business", "professional", "free")
_TIER_WEIGHTS = (0.2, 0.3, 0.3, 0.2)
# How each vendor account spells a plan differs in real workspaces; consumers must normalise these. PLAN_LABELS are
# what people type into a free-text plan attribute; PLAN_TAGS the plan as a tag or a dropdown value.
PLAN_LABELS = {
    "enterprise": ("Enterprise", "enterprise", "Enterprise (annual)"),
    "business": ("Business", "Business Plus"),
    "professional": ("Pro", "Professional", "pro"),
    "free": ("Free", "free", "Free Trial"),
}
PLAN_TAGS = {"enterprise": "enterprise", "business": "business", "professional": "pro", "free": "free"}
DISPLAY_PLAN = {"enterprise": "Enterprise", "business": "Business", "professional": "Pro", "free": "Free"}

# (display, ascii) pairs so e-mail addresses stay ASCII while names keep their accents.
_FIRST_NAMES = (
    ("Emma", "emma"), ("Liam", "liam"), ("Olivia", "olivia"), ("Noah", "noah"), ("Ava", "ava"),
    ("Lucas", "lucas"), ("Mia", "mia"), ("Ethan", "ethan"), ("Sofia", "sofia"), ("Mason", "mason"),
    ("Chloé", "chloe"), ("José", "jose"), ("Zoë", "zoe"), ("François", "francois"), ("Björn", "bjorn"),
    ("Łukasz", "lukasz"), ("Søren", "soren"), ("Ana María", "anamaria"), ("Aiko", "aiko"), ("Priya", "priya"),
    ("Wei", "wei"), ("Fatima", "fatima"), ("Kwame", "kwame"), ("Ingrid", "ingrid"), ("Mateo", "mateo"),
    ("Hannah", "hannah"), ("Omar", "omar"), ("Yuki", "yuki"), ("Elena", "elena"), ("Daniel", "daniel"),
)
_LAST_NAMES = (
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"), ("Garcia", "garcia"),
    ("Müller", "muller"), ("Schmidt", "schmidt"), ("Dubois", "dubois"), ("Rossi", "rossi"), ("Nowak", "nowak"),
    ("Nguyễn", "nguyen"), ("Kim", "kim"), ("Sato", "sato"), ("Patel", "patel"), ("O'Brien", "obrien"),
    ("Andersson", "andersson"), ("Ivanova", "ivanova"), ("da Silva", "dasilva"), ("Okafor", "okafor"),
    ("Cohen", "cohen"), ("Jensen", "jensen"), ("Fernández", "fernandez"), ("Wang", "wang"), ("Lee", "lee"),
)
_COMPANY_HEADS = ("North", "Blue", "Bright", "Iron", "Silver", "Green", "Swift", "Clear", "Stone", "Maple",
                  "Harbor", "Summit", "Pixel", "Quantum", "Atlas", "Nova", "Cedar", "Lumen", "Orbit", "Alpine")
_COMPANY_TAILS = ("wind", "field", "path", "works", "labs", "logic", "soft", "point", "bridge", "stack")
_COMPANY_FORMS = (" Inc.", " GmbH", " Ltd", " LLC", "", " AG", " SAS", " Corp.")
_COMPANY_TLDS = (".com", ".io", ".de", ".co.uk", ".fr", ".com")
_PERSONAL_DOMAINS = ("gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de")
_COUNTRIES = (("United States", "New York"), ("Germany", "Berlin"), ("United Kingdom", "London"),
              ("France", "Paris"), ("Japan", "Tokyo"), ("Brazil", "São Paulo"), ("India", "Bengaluru"),
              ("Poland", "Kraków"), ("Canada", "Toronto"), ("Australia", "Sydney"))

COMPANY_COUNT = 80


@dataclass(frozen=True, slots=True)
class Company:
    index: int
    name: str
    domain: str
    tier: str
    plan_label: str
    employees: int


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    first_name: str
    last_name: str
    email: str | None
    company: Company | None
    tier: str
    plan_label: str | None
    is_lead: bool
    country: str
    city: str
    signed_up_offset_days: int

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def _weighted_tier(rng: random.Random) -> str:
    roll = rng.random()
    acc = 0.0
    for tier, weight in zip(TIERS, _TIER_WEIGHTS):
        acc += weight
        if roll < acc:
            return tier
    return TIERS[-1]


class People:
    """Companies and customers, generated on demand from the seed and cached (they are reused constantly)."""

    def __init__(self, seed: int, customer_count: int) -> None:
        self.seed = seed
        self.customer_count = max(1, customer_count)
        self._companies = BlockCache(seed, SALT_COMPANY, self._make_company, max_blocks=COMPANY_COUNT)
        # Customers are drawn at random from the whole pool, so blocks would not help: one stream each, all kept.
        self._customers = BlockCache(seed, SALT_CUSTOMER, self._make_customer, block_size=1,
                                     max_blocks=self.customer_count)

    def company(self, index: int) -> Company:
        return self._companies.get(index)

    def customer(self, index: int) -> Customer:
        return self._customers.get(index)

    def _make_company(self, rng: random.Random, index: int) -> Company:
        head, tail = pick(rng, _COMPANY_HEADS), pick(rng, _COMPANY_TAILS)
        # Two companies can draw the same words: the index keeps their domains apart.
        stem = f"{head}{tail}".lower() + ("" if index < 40 else str(index))
        tier = _weighted_tier(rng)
        return Company(
            index=index,
            name=f"{head}{tail}{pick(rng, _COMPANY_FORMS)}",
            domain=stem + pick(rng, _COMPANY_TLDS),
            tier=tier,
            plan_label=pick(rng, PLAN_LABELS[tier]),
            employees=pick(rng, (12, 45, 120, 480, 2300, 15000)),
        )

    def _make_customer(self, rng: random.Random, index: int) -> Customer:
        first, first_ascii = pick(rng, _FIRST_NAMES)
        last, last_ascii = pick(rng, _LAST_NAMES)
        company: Company | None = None
        if rng.random() < 0.82:
            # A skew so that a handful of accounts write most of the feedback, like real customer bases.
            company = self.company(int((rng.random() ** 2) * COMPANY_COUNT))
            email: str | None = f"{first_ascii}.{last_ascii}@{company.domain}"
            tier = company.tier
            plan: str | None = company.plan_label
        else:
            email = f"{first_ascii}.{last_ascii}{1 + int(rng.random() * 98)}@{pick(rng, _PERSONAL_DOMAINS)}"
            tier = "free" if rng.random() < 0.7 else "professional"
            plan = pick(rng, PLAN_LABELS[tier])
        if rng.random() < 0.1:
            plan = None
        is_lead = rng.random() < 0.12
        if is_lead and rng.random() < 0.4:
            email = None
        country, city = pick(rng, _COUNTRIES)
        return Customer(
            index=index, first_name=first, last_name=last, email=email, company=company, tier=tier,
            plan_label=plan, is_lead=is_lead, country=country, city=city,
            signed_up_offset_days=30 + int(rng.random() * 870),
        )

    def pick_customer(self, rng: random.Random) -> Customer:
        # Squaring biases towards low indexes: some customers write many times, most write once or twice.
        return self.customer(int((rng.random() ** 1.6) * self.customer_count))


@dataclass(frozen=True, slots=True)
class Agent:
    index: int
    name: str
    email: str


AGENTS: tuple[Agent, ...] = (
    Agent(0, "Sam Rivera", "sam.rivera@acmecloud.example"),
    Agent(1, "Priya Nair", "priya.nair@acmecloud.example"),
    Agent(2, "Jonas Weber", "jonas.weber@acmecloud.example"),
    Agent(3, "Amélie Laurent", "amelie.laurent@acmecloud.example"),
    Agent(4, "Kenji Watanabe", "kenji.watanabe@acmecloud.example"),
    Agent(5, "Grace Okoye", "grace.okoye@acmecloud.example"),
)


def __getattr__(name: str) -> Any:
    # Vendor-specific spellings (time formats and the like) live in the vendors' emulator modules.
    from .vendor import vendor_attribute

    return vendor_attribute(name)
