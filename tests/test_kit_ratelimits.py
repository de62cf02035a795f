"""The kit's declarative rate-limit readers, on the header shapes vendors document."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.integrations.ratelimits import (
    HeaderWindow,
    RateLimits,
    StructuredWindow,
    Window,
    daily_budget,
    duration_text,
    parse_limit_header,
    seconds_until_utc_midnight,
)

NOON = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def response(status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={name.replace("_", "-"): value for name, value in headers.items()})


X_RATELIMIT = HeaderWindow.prefixed("default", "X-RateLimit-")


def test_x_ratelimit_with_reset_in_seconds() -> None:
    got = X_RATELIMIT.read(response(X_RateLimit_Limit="100", X_RateLimit_Remaining="7", X_RateLimit_Reset="12"), NOON)
    assert got == [Window("default", 100, 7, 12.0)]
    assert got == [("default", 100, 7, 12.0)]  # a plain tuple, as HttpClient reads it


def test_x_ratelimit_with_reset_as_a_unix_time() -> None:
    reader = HeaderWindow.prefixed("default", "X-RateLimit-", reset_is="epoch")
    headers = {"X_RateLimit_Remaining": "3", "X_RateLimit_Reset": str(int(NOON) + 9)}
    assert reader.read(response(**headers), NOON + 0.5) == [("default", None, 3, 8.5)]
    assert reader.read(response(**headers), NOON + 60) == [("default", None, 3, 0.0)]  # a reset already past


def test_no_or_unreadable_headers_read_nothing() -> None:
    assert X_RATELIMIT.read(response(), NOON) == []
    assert X_RATELIMIT.read(response(X_RateLimit_Remaining="lots"), NOON) == []
    assert X_RATELIMIT.read(response(X_RateLimit_Reset="5"), NOON) == []  # nothing without a remaining count


def test_default_reset_and_negative_counts() -> None:
    assert X_RATELIMIT.read(response(X_RateLimit_Remaining="-2"), NOON) == [("default", None, 0, 60.0)]
    reader = HeaderWindow.prefixed("default", "X-RateLimit-", default_reset=10.0)
    assert reader.read(response(X_RateLimit_Remaining="1"), NOON) == [("default", None, 1, 10.0)]


def test_alternative_header_names_are_tried_in_order() -> None:
    reader = HeaderWindow("default", remaining=("ratelimit-remaining", "X-Rate-Limit-Remaining"),
                          limit=("ratelimit-limit", "X-Rate-Limit"), reset=("ratelimit-reset",))
    assert reader.read(response(X_Rate_Limit="200", X_Rate_Limit_Remaining="5"), NOON) == [("default", 200, 5, 60.0)]
    both = response(ratelimit_remaining="9", X_Rate_Limit_Remaining="1", ratelimit_reset="4")
    assert reader.read(both, NOON) == [("default", None, 9, 4.0)]


def test_a_reset_alone_and_a_429_mean_the_window_is_spent() -> None:
    reader = HeaderWindow.prefixed("default", "X-RateLimit-", reset_is="epoch", default_reset=10.0,
                                   needs="remaining_or_reset", spent_on_429=True)
    assert reader.read(response(X_RateLimit_Reset=str(int(NOON) + 6)), NOON) == [("default", None, 0, 6.0)]
    assert reader.read(response(429, X_RateLimit_Remaining="50"), NOON) == [("default", None, 0, 10.0)]
    assert reader.read(response(), NOON) == []


def test_structured_header_picks_the_stricter_variant() -> None:
    reader = StructuredWindow("exports", "Zendesk-RateLimit-incremental-exports")
    headers = {"Zendesk-RateLimit-incremental-exports": "total=10; remaining=4; resets=30",
               "Zendesk-RateLimit-incremental-exports-cursor": "total=10;remaining=1;resets=12"}
    assert reader.read(httpx.Response(200, headers=headers), NOON) == [("exports", 10, 1, 12.0)]
    assert reader.read(httpx.Response(200, headers={"zendesk-ratelimit-incremental-exports": "remaining=2"}),
                       NOON) == [("exports", None, 2, 60.0)]
    assert reader.read(httpx.Response(200, headers={"Zendesk-RateLimit-incremental-exports": "garbage"}), NOON) == []


def test_parse_limit_header() -> None:
    assert parse_limit_header("total=10; remaining=9; resets=42") == {"total": 10.0, "remaining": 9.0, "resets": 42.0}
    assert parse_limit_header("garbage; remaining=x") == {}


def spent(window: Window) -> SourceError:
    return SourceError(ErrorKind.rate_limited, f"day spent, back in {duration_text(window.reset_in)}")


DAY = daily_budget("day", "X-Ratelimit-App-Global-Day-", when_spent=spent)


def test_daily_budget_resets_at_midnight_utc_and_only_counts_when_spent() -> None:
    assert DAY.read(response(X_Ratelimit_App_Global_Day_Remaining="0"), NOON) == [("day", None, 0, 12 * 3600.0)]
    # Requests left: the day sets no wait after a 429 (the minute window does).
    assert DAY.read(response(429, X_Ratelimit_App_Global_Day_Remaining="3", X_Ratelimit_App_Global_Day_Limit="500",
                             X_Ratelimit_App_Global_Day_Reset="40000"), NOON) == [("day", 500, 3, 0.0)]


def test_a_429_with_the_day_spent_raises_at_once() -> None:
    with pytest.raises(SourceError) as raised:
        DAY.read(response(429, X_Ratelimit_App_Global_Day_Remaining="0", X_Ratelimit_App_Global_Day_Reset="4000"),
                 NOON)
    assert raised.value.message == "day spent, back in 1 h 7 min"


def test_rate_limits_combines_readers_in_order() -> None:
    minute = HeaderWindow.prefixed("minute", "X-Ratelimit-App-Global-Minute-")
    reader = RateLimits(minute, DAY)
    headers = response(X_Ratelimit_App_Global_Minute_Remaining="87", X_Ratelimit_App_Global_Minute_Reset="41",
                       X_Ratelimit_App_Global_Day_Remaining="312")
    assert reader(headers, NOON) == [("minute", None, 87, 41.0), ("day", None, 312, 0.0)]


@pytest.mark.parametrize(("seconds", "text"), [(1, "1 min"), (60, "1 min"), (61, "2 min"), (3600, "1 h 0 min"),
                                               (3 * 3600 + 11 * 60 + 1, "3 h 12 min")])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_seconds_until_utc_midnight() -> None:
    assert seconds_until_utc_midnight(NOON) == 12 * 3600
    assert seconds_until_utc_midnight(NOON + 12 * 3600 - 1) == 1
