"""The demo workspace's spreadsheet: a G2-style reviews export, written once a day into the user's cache folder.

Demo mode shows every built-in source end to end, and a file source needs a file. The rows are dated back from
today so they sit inside Explore's default period; their ids are stable, so the next day's file updates the same
records (their dates move with the file) instead of adding new ones.
"""

from __future__ import annotations

import csv
import json
import os
import random
import threading
from datetime import date, timedelta
from pathlib import Path

ROWS = 120
SEED = 20260304
HEADERS = ("Review ID", "Review Title", "What do you dislike?", "Reviewer Name", "Reviewer Email", "Market Segment",
           "Star Rating", "Review Date")
MAPPING = {"id": "Review ID", "title": "Review Title", "content": "What do you dislike?", "customer": "Reviewer Name",
           "email": "Reviewer Email", "tier": "Market Segment", "date": "Review Date"}

_REVIEWS = (
    ("Export keeps failing", "CSV export crashes on large workspaces and we lose the afternoon."),
    ("Wish it had SSO", "We need SAML single sign-on before the security team signs off."),
    ("Slow search", "Search takes ten seconds once a project has a few thousand tickets."),
    ("Great support", "Support answered within the hour, but the mobile app still logs us out every day."),
    ("Needs a dark mode", "Please add a dark mode; the white screen is tiring on late shifts."),
    ("Pricing is confusing", "The per-seat pricing is hard to explain to finance; a team plan would help."),
    ("Integrations", "A Jira integration that syncs status both ways would save us a lot of copy and paste."),
    ("Reports break", "Scheduled reports arrive empty when the timezone is not UTC."),
    ("Love the API", "The API is clean, but the rate limit is too low for our nightly job."),
    ("Onboarding", "Onboarding new teammates is slow because permissions cannot be copied from a role."),
)
_SEGMENTS = ("Enterprise(> 1000 emp.)", "Mid-Market(51-1000 emp.)", "Small-Business(50 or fewer emp.)")
_NAMES = ("Ana Lima", "Ben Okafor", "Chloé Martin", "Dev Patel", "Eva Novak", "Felix Braun", "Grace Ho", "Hiro Sato",
          "Ines Costa", "Jonas Berg", "Kemi Adeyemi", "Lena Fischer")


def demo_file(today: date | None = None, folder: Path | None = None) -> Path:
    """Today's demo export, written on first use (the same bytes for the same day)."""
    today = today or date.today()
    if folder is None:
        from platformdirs import user_cache_path

        folder = user_cache_path("feedback-hub") / "demo"
    path = folder / f"g2-reviews-{today.isoformat()}.csv"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    randomizer = random.Random(SEED)
    # A name of its own per writer: the app and a background sync job may both write today's file at once, and
    # each must replace a whole file of its own, never another writer's half-written one.
    partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for number in range(1, ROWS + 1):
            title, text = randomizer.choice(_REVIEWS)
            name = randomizer.choice(_NAMES)
            email = f"{name.split()[0].lower()}.{number}@{randomizer.choice(('acme', 'globex', 'initech'))}.example"
            day = today - timedelta(days=randomizer.randrange(0, 120))
            writer.writerow((f"g2-{number:04d}", title, text, name, email, randomizer.choice(_SEGMENTS),
                             randomizer.choice(("2.5", "3.0", "3.5", "4.0", "4.5")), day.isoformat()))
    partial.replace(path)  # a reader never sees half a file
    return path


def demo_config(base_url: str) -> dict[str, str]:
    """The demo workspace's settings: today's export and its column mapping (the emulator's address is not used)."""
    return {"path": str(demo_file()), "mapping": json.dumps(MAPPING), "dataset": "g2-demo"}
