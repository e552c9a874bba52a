"""The organization's rows that every request reads, kept in the process per state revision.

Authenticating and deciding a request reads the caller's token, their principal, their role
bindings, the target account (and, for the registry, the model package group) and the org row.
All but the org row change only through ``SqlOrgRepository``, ``SqlTokenRepository`` and the
registry's group writes, each of which bumps ``organization.state_revision`` in the same
transaction. A request still reads the org row (one statement, as it always did for the policy
revision) and is served the other rows from here only if they were read under the revision it just
read, so a removed binding, a revoked token, a deleted principal or a group's new readers take
effect on the next request, in this process and in any other one sharing the database. A
transaction that has itself changed the org state neither reads from nor fills the cache (its rows
might yet be rolled back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 10_000  # principals x lookups; beyond it the cache starts again rather than grow


class OrgCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One tuple, replaced whole, so a reader never pairs one revision with another's entries.
        self._state: tuple[int, dict[Hashable, Any]] = (-1, {})

    def get(self, revision: int, key: Hashable, load: Callable[[], T]) -> T:
        entries = self._entries(revision)
        if entries is None:
            return load()
        try:
            return entries[key]  # type: ignore[no-any-return]
        except KeyError:
            value = load()
            if len(entries) < MAX_ENTRIES:
                entries[key] = value
            return value

    def _entries(self, revision: int) -> dict[Hashable, Any] | None:
        current, entries = self._state
        if revision == current:
            return entries
        with self._lock:
            current, entries = self._state
            if revision > current:  # newer state: forget everything read before it
                entries = {}
                self._state = (revision, entries)
                return entries
        # A transaction whose snapshot is older than what the cache holds reads for itself.
        return entries if revision == current else None
