"""Paginators as objects, one `paginate()` to drive them, and the stall guard every paged walk uses.

A paginator knows one way an API says "there is more": an export cursor (`after_cursor` + `end_of_stream`),
a cursor in the body of the next search (`pages.next.starting_after` sent back as `pagination.starting_after`), a
`links.next` address, or page numbers against a total. It reads each
page's body (`update_state`), says whether another page follows (`has_next_page`), changes the request for it
(`update_request`) and says whether the page moved forward (`progressed`). `paginate()` sends the requests through
an `HttpClient`, so retries, rate limits and deadlines stay where they are.

A vendor that keeps answering without moving on (an empty page whose cursor stays put, a `links.next` pointing
back) is asked again a few times, since caches and replicas do that briefly, then the walk ends with a typed error:
that is the `StallGuard`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .coerce import as_dict, text
from .http import ErrorKind, HttpClient, SourceError

__all__ = [
    "BodyCursorPaginator",
    "ExportCursorPaginator",
    "LinksNextPaginator",
    "PageNumberPaginator",
    "PageRequest",
    "Paginator",
    "StallGuard",
    "next_page_number",
    "paginate",
]


@dataclass
class PageRequest:
    """One page's request; a paginator rewrites it for the next page."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)
    method: str = "GET"
    json_body: Any = None
    bucket: str = "default"

    async def send(self, client: HttpClient) -> Any:
        return await client.get_json(self.path, params=self.params or None, bucket=self.bucket,
                                     method=self.method, json_body=self.json_body)

    def copy(self) -> PageRequest:
        return PageRequest(self.path, dict(self.params), self.method, _copy_json(self.json_body), self.bucket)


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def _bad_page(source: str, what: str, reason: str) -> SourceError:
    return SourceError(ErrorKind.bad_response, f"{what} {reason}", source=source)


class StallGuard:
    """Counts pages in a row that did not move forward and raises once there are `raise_after` of them.

    `message` is formatted with `stalled` (the count) and `position` (what the caller passes, e.g. a page number).
    """

    def __init__(self, *, source: str, raise_after: int, message: str, hint: str = "") -> None:
        self.source = source
        self.raise_after = raise_after
        self.message = message
        self.hint = hint
        self.stalled = 0

    def check(self, progressed: bool, position: Any = None) -> None:
        self.stalled = 0 if progressed else self.stalled + 1
        if self.stalled >= self.raise_after:
            raise SourceError(
                ErrorKind.bad_response,
                self.message.format(stalled=self.stalled, position=position),
                hint=self.hint,
                source=self.source,
            )


class Paginator(abc.ABC):
    """One way of paging. `update_state` reads a body; then `has_next_page` and `update_request` take over."""

    has_next_page: bool = True

    def init_request(self, request: PageRequest) -> None:
        """Set the first request's paging parameters (a resumed walk starts where it stopped)."""

    @abc.abstractmethod
    def update_state(self, body: Any) -> None:
        """Read where the next page is from this page's body; raise SourceError when the body cannot say."""

    @abc.abstractmethod
    def update_request(self, request: PageRequest) -> None:
        """Point the request at the next page."""

    @abc.abstractmethod
    def progressed(self) -> bool:
        """Whether the page just read moved the walk forward (the stall guard counts those that did not)."""

    def position(self) -> Any:
        """Where the walk stands, for messages."""
        return None


class ExportCursorPaginator(Paginator):
    """An export that names the next page's cursor and says when the stream ends (a cursor-based incremental export).

    The cursor is sent as `param`; a page without a new cursor keeps the last one. A page saying more follows but
    naming no cursor at all is a bad response: following it would start over."""

    def __init__(self, *, source: str, what: str, cursor: str | None = None, param: str = "cursor",
                 cursor_key: str = "after_cursor", end_key: str = "end_of_stream", items_key: str | None = None,
                 opening_params: Sequence[str] = ("start_time",)) -> None:
        self.source, self.what = source, what
        self.cursor, self.previous = cursor, cursor
        self.param, self.cursor_key, self.end_key = param, cursor_key, end_key
        # `items_key`: the list every page must hold; `opening_params`: sent only until there is a cursor.
        self.items_key, self.opening_params = items_key, tuple(opening_params)

    def init_request(self, request: PageRequest) -> None:
        if self.cursor is not None:
            request.params[self.param] = self.cursor

    def update_state(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _bad_page(self.source, self.what, "answered an unexpected page (not a JSON object)")
        if self.items_key is not None and not isinstance(body.get(self.items_key), list):
            raise _bad_page(self.source, self.what, f"answered an unexpected page (no `{self.items_key}` list)")
        end = body.get(self.end_key)
        if not isinstance(end, bool):
            raise _bad_page(self.source, self.what, f"answered an unexpected page (no `{self.end_key}` flag)")
        after = body.get(self.cursor_key)
        if after is not None and not (isinstance(after, str) and after):
            raise _bad_page(self.source, self.what, f"answered an unexpected page (`{self.cursor_key}` is not a string)")
        if not end and after is None:
            raise _bad_page(self.source, self.what, "said more pages follow but gave no cursor to fetch them")
        self.previous, self.cursor = self.cursor, after or self.cursor
        self.has_next_page = not end

    def update_request(self, request: PageRequest) -> None:
        for key in self.opening_params:
            request.params.pop(key, None)
        request.params[self.param] = self.cursor

    def progressed(self) -> bool:
        return self.cursor != self.previous

    def position(self) -> Any:
        return self.cursor


def _at(body: Any, path: Sequence[str]) -> Any:
    for key in path:
        body = as_dict(body).get(key)
    return body


def _set_at(target: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


class BodyCursorPaginator(Paginator):
    """A cursor read at `next_path` in the body and sent back at `request_path` in the next request's JSON body
    (a search API: `pages.next.starting_after` → `pagination.starting_after`). No cursor: the last page."""

    def __init__(self, *, next_path: Sequence[str] = ("pages", "next", "starting_after"),
                 request_path: Sequence[str] = ("pagination", "starting_after"), cursor: str | None = None) -> None:
        self.next_path, self.request_path = tuple(next_path), tuple(request_path)
        self.cursor, self.previous = cursor, cursor
        self.sent: set[str] = set()

    def init_request(self, request: PageRequest) -> None:
        request.json_body = request.json_body if isinstance(request.json_body, dict) else {}
        _set_at(request.json_body, self.request_path, self.cursor)

    def update_state(self, body: Any) -> None:
        if self.cursor is not None:
            self.sent.add(self.cursor)
        self.previous, self.cursor = self.cursor, text(_at(body, self.next_path))
        self.has_next_page = self.cursor is not None

    def update_request(self, request: PageRequest) -> None:
        self.init_request(request)

    def progressed(self) -> bool:
        # A cursor already sent (a cache answering an older page) leads back, not forward.
        return self.cursor is not None and self.cursor not in self.sent

    def position(self) -> Any:
        return self.previous


def next_page_number(body: Any, current: int, *, param: str = "page") -> int | None:
    """The page `links.next` points to (None on the last page); current + 1 when the link names no page."""
    link = text(as_dict(as_dict(body).get("links")).get("next"))
    if link is None:
        return None
    try:
        number = int(httpx.URL(link).params.get(param, ""))
    except (ValueError, httpx.InvalidURL):
        return current + 1
    return number if number >= 1 else current + 1


class _NumberedPages(Paginator):
    """Pages by number, from `start`; a page moves forward when it had data and the next number is higher."""

    def __init__(self, *, start: int = 1, param: str = "page", data_key: str = "data") -> None:
        self.page, self.param, self.data_key = start, param, data_key
        self.next: int | None = None
        self.had_data = False

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page

    def update_request(self, request: PageRequest) -> None:
        assert self.next is not None
        self.page = self.next
        request.params[self.param] = self.page

    def progressed(self) -> bool:
        return self.had_data and self.next is not None and self.next > self.page

    def position(self) -> Any:
        return self.page


class LinksNextPaginator(_NumberedPages):
    """`links.next` names the next page; its `page` parameter is sent on the same path, so
    credentials never follow a link to another host."""

    def update_state(self, body: Any) -> None:
        self.had_data = bool(as_dict(body).get(self.data_key))
        self.next = next_page_number(body, self.page, param=self.param)
        self.has_next_page = self.next is not None


class PageNumberPaginator(_NumberedPages):
    """Page numbers against the body's `total` and `per_page` (bulk listings that carry both). Without a
    readable total, a short page is the last one."""

    def __init__(self, *, per_page: int, start: int = 1, param: str = "page", data_key: str = "data",
                 total_key: str = "total") -> None:
        super().__init__(start=start, param=param, data_key=data_key)
        self.per_page, self.total_key = per_page, total_key

    def update_state(self, body: Any) -> None:
        body = as_dict(body)
        data = body.get(self.data_key)
        count = len(data) if isinstance(data, list) else 0
        self.had_data = count > 0
        total, per_page = body.get(self.total_key), body.get("per_page", self.per_page)
        per_page = per_page if isinstance(per_page, int) and not isinstance(per_page, bool) and per_page > 0 \
            else self.per_page
        if isinstance(total, int) and not isinstance(total, bool):
            more = self.page * per_page < total
        else:
            more = count >= per_page
        self.next = self.page + 1 if more else None
        self.has_next_page = more


async def paginate(
    client: HttpClient,
    request: PageRequest,
    paginator: Paginator,
    *,
    guard: StallGuard | None = None,
    prefetch: bool = False,
) -> AsyncIterator[Any]:
    """The bodies of every page, in order. A page that does not move forward counts against `guard` before it is
    yielded. `prefetch`: the next page is asked for as soon as this one names it, so the vendor prepares it while
    the caller works on this one (still one request per page, in order; stopping early cancels it)."""
    request = request.copy()
    paginator.init_request(request)
    following: asyncio.Task[Any] | None = None
    try:
        while True:
            if following is not None:
                body, following = await following, None
            else:
                body = await request.send(client)
            paginator.update_state(body)
            if paginator.has_next_page:
                if guard is not None:
                    guard.check(paginator.progressed(), paginator.position())
                paginator.update_request(request)
                if prefetch:
                    following = asyncio.ensure_future(request.copy().send(client))
            yield body
            if not paginator.has_next_page:
                return
    finally:
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
