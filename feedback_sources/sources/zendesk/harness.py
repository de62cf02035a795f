"""The standard acceptance suite's harness for this source: its emulator, its paged list, its cursors."""

from ..harness import EmulatorHarness, GENERALLY_CORRUPTED, YEAR_2100

HARNESS = EmulatorHarness(
    source="zendesk",
    list_path=r"/incremental/tickets/cursor\.json$",
    credentials=lambda e, url: {"subdomain": e.config.zendesk_subdomain, "email": e.config.zendesk_email,
                                "api_token": e.config.zendesk_token, "base_url": url},
    record_ids=lambda e: [str(i) for i in e.zendesk.tickets_in_range(None, None)],
    future_cursor={"after_cursor": None, "start_time": YEAR_2100},
    corrupted_cursors=(*GENERALLY_CORRUPTED, {"after_cursor": 7, "start_time": "yesterday"},
                       {"after_cursor": 1, "start_time": "x"}),
    options={"page_size": 40},
    dataset={"zendesk_tickets": 100},
)
