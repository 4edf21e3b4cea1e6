"""What each source address holds, and how often its JOINs fail: the hub's per-source limits.

A *source* is the IP address a connection comes from (behind a relay speaking
the PROXY protocol, the client's real one), as a string. ``None`` means the
address is not known (a core driven in-process by tests or tools): such
connections are never counted or limited here.

The hub tells a ``Sources`` what happens -- a connection opened, joined a room
(perhaps as its host), ended; a JOIN with a code was refused -- and asks it
before opening a connection (``refusal``), before creating a room
(``may_host``) and before looking a code up (``may_join``). Like the hub it is
pure: time is passed in.

Failed JOINs are remembered across connections (that is the point: reconnecting
must not reset them), so a source's tally outlives its last connection until
its failures are a minute old; ``forget`` is then called by the hub's timer.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass

from ..limits import Limits

Source = str | None


def source_key(host: str) -> str:
    """The source an IP address counts as: IPv4 as it is (an IPv4-mapped IPv6
    address as its IPv4 one); IPv6 by its /64, since one subscriber is routinely
    given a whole /64 and could otherwise pick a fresh address per connection."""
    if ":" not in host and "%" not in host:
        # IPv4 as the kernel writes it is already its own key, and any other string
        # without a colon (a test's name) is too: no parsing on the accept path.
        return host
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host  # not an IP address (a test's made-up name): itself
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))

#: Failed JOINs are counted over this window (the limit is "per minute").
FAILED_JOIN_WINDOW = 60.0


@dataclass(slots=True)
class AbuseCounters:
    """Totals since the hub started, for log lines and metrics."""

    refused_connections: int = 0  # per-source limit or a full server with nobody to evict
    evicted_connections: int = 0  # connections in no room closed to make room at max_connections
    failed_joins: int = 0  # JOINs with a code answered 3, 4 or 5
    joins_over_allowance: int = 0  # JOINs answered 4 unlooked-up: the source used up its allowance
    flood_closes: int = 0
    strike_closes: int = 0
    wrong_rejoin_guesses: int = 0
    empty_rooms_closed: int = 0


@dataclass(slots=True)
class _Tally:
    connections: int = 0
    unjoined: int = 0
    rooms: int = 0
    failures: deque[float] | None = None  # times of the latest failed JOINs, at most the allowance


class Sources:
    def __init__(self, limits: Limits):
        self.limits = limits
        self._tallies: dict[str, _Tally] = {}

    def __len__(self) -> int:
        """Sources with a tally (open connections, or failed JOINs in the last minute)."""
        return len(self._tallies)

    def holds(self, source: Source) -> tuple[int, int, int]:
        """(connections, connections in no room, rooms hosted) of ``source``."""
        tally = self._tallies.get(source) if source is not None else None
        return (0, 0, 0) if tally is None else (tally.connections, tally.unjoined, tally.rooms)

    # --- questions ----------------------------------------------------------------

    def refusal(self, source: Source) -> str | None:
        """Why a new connection from ``source`` must be refused, or None."""
        tally = self._tallies.get(source) if source is not None else None
        if tally is None:
            return None
        limits = self.limits
        if limits.max_connections_per_source and tally.connections >= limits.max_connections_per_source:
            return f"{tally.connections} connections from this address already"
        if limits.max_unjoined_per_source and tally.unjoined >= limits.max_unjoined_per_source:
            return f"{tally.unjoined} connections from this address in no room already"
        return None

    def may_host(self, source: Source) -> bool:
        tally = self._tallies.get(source) if source is not None else None
        limit = self.limits.max_rooms_per_source
        return tally is None or not limit or tally.rooms < limit

    def may_join(self, source: Source, now: float) -> bool:
        """False once ``source`` has used up its failed JOINs for the last minute."""
        tally = self._tallies.get(source) if source is not None else None
        limit = self.limits.failed_joins_per_minute
        if tally is None or not limit or tally.failures is None or len(tally.failures) < limit:
            return True
        return tally.failures[0] <= now - FAILED_JOIN_WINDOW

    # --- what happened ----------------------------------------------------------------

    def opened(self, source: Source) -> None:
        if source is None:
            return
        tally = self._tallies.get(source)
        if tally is None:
            tally = self._tallies[source] = _Tally()
        tally.connections += 1
        tally.unjoined += 1

    def joined(self, source: Source, *, hosting: bool) -> None:
        tally = self._tallies.get(source) if source is not None else None
        if tally is not None:
            tally.unjoined -= 1
            tally.rooms += hosting

    def ended(self, source: Source, *, joined: bool, hosting: bool, now: float) -> float | None:
        """A connection from ``source`` ended. Returns when to call ``forget`` (its
        failed JOINs must outlive it), or None when nothing is left to remember."""
        tally = self._tallies.get(source) if source is not None else None
        if tally is None:
            return None
        tally.connections -= 1
        if not joined:
            tally.unjoined -= 1
        tally.rooms -= hosting
        return self._forget_at(source, tally, now)

    def join_failed(self, source: Source, now: float) -> int:
        """A JOIN with a code from ``source`` was refused: its failures in the last minute."""
        tally = self._tallies.get(source) if source is not None else None
        if tally is None or not self.limits.failed_joins_per_minute:
            return 0
        failures = tally.failures
        if failures is None:
            failures = tally.failures = deque(maxlen=self.limits.failed_joins_per_minute)
        failures.append(now)
        return sum(1 for t in failures if t > now - FAILED_JOIN_WINDOW)

    def forget(self, source: str, now: float) -> float | None:
        """Drop ``source``'s tally if nothing in it matters any more; else when to ask again."""
        tally = self._tallies.get(source)
        return None if tally is None else self._forget_at(source, tally, now)

    def clear(self) -> None:
        self._tallies.clear()

    def _forget_at(self, source: str, tally: _Tally, now: float) -> float | None:
        if tally.connections > 0:
            return None  # forgotten, if need be, when its last connection ends
        failures = tally.failures
        if failures and failures[-1] > now - FAILED_JOIN_WINDOW:
            return failures[-1] + FAILED_JOIN_WINDOW
        del self._tallies[source]
        return None
