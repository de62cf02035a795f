"""The standard acceptance suite's harness for this source: its emulator, its paged list, its cursors."""

from ..harness import EmulatorHarness, GENERALLY_CORRUPTED, YEAR_2100

HARNESS = EmulatorHarness(
    source="intercom",
    list_path=r"^/conversations/search$",
    credentials=lambda e, url: {"access_token": e.config.intercom_token, "base_url": url},
    record_ids=lambda e: list(e.intercom.conversations_in_range(None, None)),
    future_cursor={"updated_after": YEAR_2100, "updated_before": None, "starting_after": None,
                   "high_water": YEAR_2100},
    corrupted_cursors=(*GENERALLY_CORRUPTED, {"updated_after": -5, "updated_before": None, "starting_after": None,
                                              "high_water": "x"}, {"after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8"}),
    options={"page_size": 40},
    dataset={"intercom_conversations": 100},
)
