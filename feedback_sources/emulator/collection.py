"""A lazily generated, update-ordered collection of records with a small overlay of mutations.

Base record i has key (updated_at(i), first_id + i), strictly increasing in i, so "records after a cursor" is a
binary search plus a walk. Only records that tests mutate or add are held in memory (the overlay); a base record
that has an overlay version is skipped when walking the base sequence.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from .data import SALT_TIMELINE, mix64, unit_interval

# (updated_at, id, created_at, base index or -1 for overlay records)
Entry = tuple[int, int, int, int]
Key = tuple[int, int]

_LAG_SALT = SALT_TIMELINE + 100


class LazyCollection:
    def __init__(
        self,
        *,
        count: int,
        start_ts: int,
        end_ts: int,
        seed: int,
        salt: int,
        first_id: int,
        max_lag_seconds: int,
        make_record: Callable[[int], dict[str, Any]],
    ) -> None:
        self.count = max(0, count)
        self.start_ts = start_ts
        self.end_ts = max(start_ts, end_ts)
        self.first_id = first_id
        self.max_lag = max(0, max_lag_seconds)
        self._span = self.end_ts - self.start_ts
        self._seed_key = mix64(seed * 7919 + salt)
        self._make_record = make_record
        self._overrides: dict[int, tuple[int, int, dict[str, Any]]] = {}
        self._overlay_keys: list[Key] = []
        self._added = 0
        self.version = 0
        self.lock = threading.RLock()
        self._match_cache: OrderedDict[tuple, list[Entry]] = OrderedDict()

    # ---- base sequence ------------------------------------------------------------------------------------------

    def updated_at(self, index: int) -> int:
        # floor(span * (i + u) / n) is non-decreasing in i for any u in [0, 1), and stays below end_ts.
        jitter = unit_interval(self._seed_key, 1, index)
        return self.start_ts + int(self._span * (index + jitter) / self.count)

    def created_at(self, index: int) -> int:
        return self.stamps(index)[1]

    def stamps(self, index: int) -> tuple[int, int]:
        """(updated_at, created_at) of base record `index`."""
        # Most records are created shortly before their last update; a few linger for weeks. Records near the
        # start of the span get proportionally shorter lags, so none is created before the span begins.
        updated = self.updated_at(index)
        return updated, updated - self._lag(updated, index)

    def _lag(self, updated: int, index: int) -> int:
        return int((unit_interval(self._seed_key, _LAG_SALT, index) ** 3) * min(self.max_lag, updated - self.start_ts))

    def id_of(self, index: int) -> int:
        return self.first_id + index

    def index_of(self, record_id: int) -> int | None:
        index = record_id - self.first_id
        return index if 0 <= index < self.count else None

    def _base_position_after(self, key: Key) -> int:
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if (self.updated_at(mid), self.first_id + mid) > key:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ---- records ------------------------------------------------------------------------------------------------

    def next_id(self) -> int:
        return self.first_id + self.count + self._added

    @property
    def size(self) -> int:
        """Base records plus added ones (deleted records included)."""
        return self.count + self._added

    def overrides(self) -> dict[int, tuple[int, int, dict[str, Any]]]:
        """A snapshot of the mutated and added records: id -> (updated_at, created_at, record)."""
        with self.lock:
            return dict(self._overrides)

    def exists(self, record_id: int) -> bool:
        return record_id in self._overrides or self.index_of(record_id) is not None

    def get(self, record_id: int) -> dict[str, Any] | None:
        override = self._overrides.get(record_id)
        if override is not None:
            return override[2]
        index = self.index_of(record_id)
        return None if index is None else self._make_record(index)

    def timestamps(self, record_id: int) -> tuple[int, int] | None:
        """(updated_at, created_at) of a record, without generating it."""
        override = self._overrides.get(record_id)
        if override is not None:
            return override[0], override[1]
        index = self.index_of(record_id)
        return None if index is None else self.stamps(index)

    def record_for(self, entry: Entry) -> dict[str, Any]:
        if entry[3] >= 0:
            return self._make_record(entry[3])
        return self._overrides[entry[1]][2]

    def put(self, record_id: int, record: dict[str, Any], updated_ts: int, created_ts: int) -> None:
        with self.lock:
            old = self._overrides.get(record_id)
            if old is not None:
                old_key = (old[0], record_id)
                position = bisect.bisect_left(self._overlay_keys, old_key)
                if position < len(self._overlay_keys) and self._overlay_keys[position] == old_key:
                    del self._overlay_keys[position]
            elif self.index_of(record_id) is None:
                self._added += 1
            self._overrides[record_id] = (updated_ts, created_ts, record)
            bisect.insort(self._overlay_keys, (updated_ts, record_id))
            self.version += 1
            self._match_cache.clear()

    def forget_matches(self) -> None:
        """Drop cached listings (records left the collection without a new version, e.g. deleted)."""
        with self.lock:
            self._match_cache.clear()

    # ---- walking ------------------------------------------------------------------------------------------------

    def iter_after(self, key: Key, until_ts: int | None = None) -> Iterator[Entry]:
        """Entries with (updated_at, id) > key in ascending order, up to updated_at <= until_ts."""
        with self.lock:
            position = bisect.bisect_right(self._overlay_keys, key)
            overlay = self._overlay_keys[position:]
            overrides = dict(self._overrides)
        index = self._base_position_after(key)
        overlay_pos = 0
        limit = until_ts if until_ts is not None else float("inf")
        while True:
            base_entry: Entry | None = None
            while index < self.count:
                record_id = self.first_id + index
                if record_id in overrides:
                    index += 1
                    continue
                updated = self.updated_at(index)
                base_entry = (updated, record_id, -2, index)
                break
            overlay_entry: Entry | None = None
            if overlay_pos < len(overlay):
                updated, record_id = overlay[overlay_pos]
                overlay_entry = (updated, record_id, overrides[record_id][1], -1)
            if base_entry is None and overlay_entry is None:
                return
            if overlay_entry is None or (base_entry is not None and base_entry[:2] < overlay_entry[:2]):
                assert base_entry is not None
                if base_entry[0] > limit:
                    return
                index += 1
                yield (base_entry[0], base_entry[1], base_entry[0] - self._lag(base_entry[0], base_entry[3]),
                       base_entry[3])
            else:
                if overlay_entry[0] > limit:
                    return
                overlay_pos += 1
                yield overlay_entry

    def matching(self, signature: tuple, predicate: Callable[[int, int, int], bool], lower_updated: int | None,
                 upper_updated: int | None) -> list[Entry]:
        """All entries with predicate(created, updated, id), sorted by (updated_at, id).

        Cached per (signature, version): paging through one query costs one walk. lower_updated/upper_updated
        (inclusive) only narrow the walk over base records and must be implied by the predicate for base records;
        overlay records are always tested.
        """
        cache_key = (signature, lower_updated, upper_updated)
        with self.lock:
            version = self.version
            cached = self._match_cache.get(cache_key)
            if cached is not None:
                self._match_cache.move_to_end(cache_key)
                return cached
        start_key: Key = (lower_updated - 1, 1 << 62) if lower_updated is not None else (-(1 << 62), -1)
        result = [
            entry for entry in self.iter_after(start_key, upper_updated)
            if predicate(entry[2], entry[0], entry[1])
        ]
        if upper_updated is not None:
            # Overlay records past the narrowing bound may still match (their created_at is not bounded by lag).
            with self.lock:
                extra = [(u, i) for (u, i) in self._overlay_keys if u > upper_updated]
                overrides = dict(self._overrides)
            for updated, record_id in extra:
                created = overrides[record_id][1]
                if predicate(created, updated, record_id):
                    result.append((updated, record_id, created, -1))
        with self.lock:
            if self.version == version:
                self._match_cache[cache_key] = result
                while len(self._match_cache) > 4:
                    self._match_cache.popitem(last=False)
        return result

    def all_entries(self) -> Iterator[Entry]:
        return self.iter_after((-(1 << 62), -1))
