"""The standard acceptance suite's harness for this source: its emulator, its paged list, its cursors."""

from ..harness import EmulatorHarness, GENERALLY_CORRUPTED

HARNESS = EmulatorHarness(
    source="surveymonkey",
    list_path=r"/responses/bulk$",
    credentials=lambda e, url: {"access_token": e.config.surveymonkey_token, "base_url": url},
    record_ids=lambda e: list(e.surveymonkey.responses_in_range()),
    future_cursor={"modified_after": "2100-01-01T00:00:00+00:00", "created_start": None, "created_end": None,
                   "surveys": [], "survey_id": None, "page": None, "high_water": None, "pass_started_at": None},
    corrupted_cursors=(*GENERALLY_CORRUPTED, {"modified_after": "not a date", "surveys": [], "survey_id": None,
                                              "page": None}, {"after_cursor": "abc"}),
    dataset={"surveymonkey_surveys": 2, "surveymonkey_responses_per_survey": 120},
)
