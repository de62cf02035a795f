"""The kit's paginators and `paginate()`, over an HttpClient on a mock transport (no network)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from feedback_sources.integrations.http import ErrorKind, HttpClient, RetryPolicy, SourceError
from feedback_sources.integrations.paging import (
    BodyCursorPaginator,
    ExportCursorPaginator,
    LinksNextPaginator,
    PageNumberPaginator,
    PageRequest,
    StallGuard,
    next_page_number,
    paginate,
)


class Script:
    """Answers successive requests with the given bodies and records what was asked."""

    def __init__(self, *bodies: Any) -> None:
        self.bodies = list(bodies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.bodies.pop(0))

    def params(self) -> list[dict[str, str]]:
        return [dict(request.url.params) for request in self.requests]


def client_for(script: Script) -> HttpClient:
    return HttpClient(source="test", base_url="https://api.example.test", transport=httpx.MockTransport(script),
                      retry_policy=RetryPolicy(max_attempts=1, request_deadline=None))


async def bodies(script: Script, request: PageRequest, paginator: Any, **options: Any) -> list[Any]:
    async with client_for(script) as client:
        return [body async for body in paginate(client, request, paginator, **options)]


def guard(raise_after: int = 3) -> StallGuard:
    return StallGuard(source="test", raise_after=raise_after, message="stuck {stalled} times at {position}",
                      hint="try later")


def export(after: str | None, end: bool, tickets: list[int] | None = None) -> dict[str, Any]:
    return {"tickets": tickets if tickets is not None else [1], "after_cursor": after, "end_of_stream": end}


@pytest.mark.parametrize("prefetch", [False, True])
async def test_export_cursor_follows_the_cursor_until_the_stream_ends(prefetch: bool) -> None:
    script = Script(export("c1", False), export("c2", False), export(None, True))
    request = PageRequest("/export", {"per_page": 2, "start_time": 100})
    paginator = ExportCursorPaginator(source="test", what="the export", items_key="tickets")
    got = await bodies(script, request, paginator, guard=guard(), prefetch=prefetch)
    assert [body["after_cursor"] for body in got] == ["c1", "c2", None]
    assert script.params() == [
        {"per_page": "2", "start_time": "100"}, {"per_page": "2", "cursor": "c1"}, {"per_page": "2", "cursor": "c2"}
    ]
    assert paginator.cursor == "c2"  # the end page named none: the last cursor stays
    assert request.params == {"per_page": 2, "start_time": 100}  # the caller's request is not changed


async def test_export_cursor_resumes_from_a_saved_cursor() -> None:
    script = Script(export(None, True))
    await bodies(script, PageRequest("/export", {"per_page": 2}), ExportCursorPaginator(
        source="test", what="the export", cursor="saved"))
    assert script.params() == [{"per_page": "2", "cursor": "saved"}]


async def test_export_cursor_more_pages_without_a_cursor_is_a_bad_response() -> None:
    script = Script(export(None, False))
    with pytest.raises(SourceError) as raised:
        await bodies(script, PageRequest("/export"), ExportCursorPaginator(source="test", what="the export"))
    assert raised.value.kind == ErrorKind.bad_response
    assert raised.value.message == "the export said more pages follow but gave no cursor to fetch them"


@pytest.mark.parametrize(("body", "reason"), [
    ([], "not a JSON object"),
    ({"after_cursor": "x", "end_of_stream": False}, "no `tickets` list"),
    ({"tickets": [], "after_cursor": "x"}, "no `end_of_stream` flag"),
    ({"tickets": [], "after_cursor": 5, "end_of_stream": False}, "`after_cursor` is not a string"),
])
async def test_export_cursor_refuses_a_malformed_page(body: Any, reason: str) -> None:
    with pytest.raises(SourceError) as raised:
        await bodies(Script(body), PageRequest("/export"),
                     ExportCursorPaginator(source="test", what="the export", items_key="tickets"))
    assert raised.value.message == f"the export answered an unexpected page ({reason})"


@pytest.mark.parametrize("prefetch", [False, True])
async def test_a_stalled_export_raises_after_the_guard_limit(prefetch: bool) -> None:
    # The cursor moves once, then stays put: the third page in a row that does not move it ends the walk.
    script = Script(export("c1", False), *[export("c1", False, []) for _ in range(5)])
    with pytest.raises(SourceError) as raised:
        await bodies(script, PageRequest("/export"), ExportCursorPaginator(source="test", what="the export"),
                     guard=guard(3), prefetch=prefetch)
    assert (raised.value.kind, raised.value.message, raised.value.hint) == (
        ErrorKind.bad_response, "stuck 3 times at c1", "try later")
    assert len(script.requests) == 4  # nothing more is asked for once the guard gives up


async def test_a_stall_that_recovers_is_forgiven() -> None:
    pages = [export("c1", False), export("c1", False, []), export("c1", False, []), export("c2", False),
             export("c2", False, []), export("c2", False, []), export(None, True)]
    got = await bodies(Script(*pages), PageRequest("/export"),
                       ExportCursorPaginator(source="test", what="the export"), guard=guard(3))
    assert len(got) == 7


def search(after: str | None, ids: list[int]) -> dict[str, Any]:
    pages: dict[str, Any] = {"page": 1}
    if after is not None:
        pages["next"] = {"starting_after": after}
    return {"data": ids, "pages": pages}


async def test_body_cursor_sends_starting_after_in_the_next_body() -> None:
    script = Script(search("a1", [1]), search("a2", [2]), search(None, [3]))
    request = PageRequest("/search", method="POST", json_body={"query": {"x": 1}, "pagination": {"per_page": 2}})
    got = await bodies(script, request, BodyCursorPaginator(), guard=guard())
    assert [body["data"] for body in got] == [[1], [2], [3]]
    sent = [json.loads(r.content) for r in script.requests]
    assert [body["pagination"] for body in sent] == [
        {"per_page": 2}, {"per_page": 2, "starting_after": "a1"}, {"per_page": 2, "starting_after": "a2"}
    ]
    assert all(body["query"] == {"x": 1} and r.method == "POST" for body, r in zip(sent, script.requests))


async def test_body_cursor_pointing_back_counts_as_a_stall() -> None:
    # A cache answering an older page names a cursor already sent: asked again, then refused.
    script = Script(search("a1", [1]), search("a2", [2]), *[search("a1", [1]) for _ in range(4)])
    with pytest.raises(SourceError):
        await bodies(script, PageRequest("/search", method="POST", json_body={}), BodyCursorPaginator(),
                     guard=guard(2))


def listing(page: int, ids: list[int], next_link: str | None) -> dict[str, Any]:
    links: dict[str, Any] = {"self": f"https://api.example.test/v3/surveys?page={page}"}
    if next_link is not None:
        links["next"] = next_link
    return {"data": ids, "page": page, "links": links}


async def test_links_next_follows_the_page_named_in_the_link() -> None:
    script = Script(listing(1, [1], "https://elsewhere.test/v3/surveys?page=3&per_page=2"),
                    listing(3, [2], None))
    got = await bodies(script, PageRequest("/surveys", {"per_page": 2}), LinksNextPaginator(), guard=guard())
    assert [body["data"] for body in got] == [[1], [2]]
    # The link's page number, asked on our own host and path: credentials never follow a link elsewhere.
    assert [str(r.url) for r in script.requests] == [
        "https://api.example.test/surveys?per_page=2&page=1", "https://api.example.test/surveys?per_page=2&page=3"
    ]


async def test_a_missing_next_link_ends_the_walk() -> None:
    script = Script({"data": [1], "links": {"self": "x"}}, {"data": [2]})
    got = await bodies(script, PageRequest("/surveys"), LinksNextPaginator())
    assert got == [{"data": [1], "links": {"self": "x"}}]
    assert len(script.requests) == 1


async def test_links_next_that_never_moves_on_is_a_stall() -> None:
    script = Script(*[listing(1, [], "https://api.example.test/surveys?page=2") for _ in range(5)])
    with pytest.raises(SourceError) as raised:
        await bodies(script, PageRequest("/surveys"), LinksNextPaginator(), guard=guard(3))
    assert raised.value.message == "stuck 3 times at 2"  # the link kept pointing at page 2
    assert len(script.requests) == 3


@pytest.mark.parametrize(("link", "expected"), [
    (None, None),
    ("https://api.example.test/surveys?page=7", 7),
    ("https://api.example.test/surveys", 3),  # no page named: the next one
    ("https://api.example.test/surveys?page=x", 3),
    ("https://api.example.test/surveys?page=0", 3),
])
def test_next_page_number(link: str | None, expected: int | None) -> None:
    body = {"links": {"next": link}} if link is not None else {"links": {}}
    assert next_page_number(body, 2) == expected


async def test_page_number_pages_until_the_total() -> None:
    script = Script({"data": [1, 2], "per_page": 2, "page": 1, "total": 5},
                    {"data": [3, 4], "per_page": 2, "page": 2, "total": 5},
                    {"data": [5], "per_page": 2, "page": 3, "total": 5})
    got = await bodies(script, PageRequest("/bulk", {"per_page": 2}), PageNumberPaginator(per_page=2), guard=guard())
    assert [body["data"] for body in got] == [[1, 2], [3, 4], [5]]
    assert [r.url.params["page"] for r in script.requests] == ["1", "2", "3"]


async def test_page_number_without_a_total_stops_at_a_short_page() -> None:
    script = Script({"data": [1, 2]}, {"data": [3]})
    got = await bodies(script, PageRequest("/bulk"), PageNumberPaginator(per_page=2, start=4))
    assert len(got) == 2 and [r.url.params["page"] for r in script.requests] == ["4", "5"]


async def test_page_number_with_empty_pages_before_the_total_is_a_stall() -> None:
    script = Script(*[{"data": [], "per_page": 2, "total": 50} for _ in range(5)])
    with pytest.raises(SourceError):
        await bodies(script, PageRequest("/bulk"), PageNumberPaginator(per_page=2), guard=guard(2))
    assert len(script.requests) == 2


async def test_stopping_early_cancels_the_prefetched_page() -> None:
    script = Script(export("c1", False), export("c2", False), export(None, True))
    async with client_for(script) as client:
        pages = paginate(client, PageRequest("/export"), ExportCursorPaginator(source="t", what="x"), prefetch=True)
        async for _ in pages:
            break
        await pages.aclose()
    assert len(script.requests) <= 2
