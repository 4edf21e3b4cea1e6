"""What only the shell can count: connections, packets by type, handling and commit times.

The pure core reports what happens in rooms as events; how many sockets opened
and why each closed, how many packets crossed the wire, how long a SPIN took to
turn into the bytes of its GAME and how long a game took to commit are facts of
the shell. It keeps them here as plain integers and fixed-bucket histograms:
one dictionary increment per packet, one list increment per SPIN, no objects
made on the hot path. Exporters (``lgmp.http.metrics``) read them when scraped;
two ``ShellStats`` add up bucket by bucket (``merge``), so figures from several
processes can be summed.

Close reasons are free text made where the decision is taken; ``close_kind``
folds them into a small fixed set of labels so a hostile peer cannot grow the
table (a bad-bytes reason quotes the bytes).
"""

from __future__ import annotations

from bisect import bisect_left

from ..wire.dialects import DIALECTS
from ..wire.packets import Direction

# Every packet class of every dialect the server speaks, by direction.
CLIENT_PACKETS = tuple(dict.fromkeys(t for d in DIALECTS.values() for t in d.packet_types(Direction.CLIENT_TO_SERVER)))
SERVER_PACKETS = tuple(dict.fromkeys(t for d in DIALECTS.values() for t in d.packet_types(Direction.SERVER_TO_CLIENT)))

#: Upper bounds (seconds) of the SPIN handling histogram: the server's own share of
#: SPIN->GAME is tens of microseconds when idle and milliseconds under load.
SPIN_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)
#: Upper bounds (seconds) of the results-commit histogram: an fsync takes
#: milliseconds on an SSD, up to a second on a busy disk; STORE_WAIT is 10 s.
COMMIT_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Why connections close, as metric labels: the first prefix that matches names it.
CLOSE_KINDS: tuple[tuple[str, str], ...] = (
    ("packet flood", "flood"),
    ("too many ignored packets", "strikes"),
    ("bad bytes", "bad_bytes"),
    ("packet not completed", "packet_timeout"),
    ("no JOIN in time", "join_timeout"),
    ("send queue full", "send_queue"),
    ("peer closed", "peer_closed"),
    ("read failed", "read_failed"),
    ("write failed", "write_failed"),
    ("the host left", "host_left"),
    ("every player left", "room_empty"),
    ("the lobby was idle", "lobby_idle"),
    ("the game ended before the seat was reclaimed", "rejoin_expired"),
    ("closed by an operator", "operator"),
    ("the server is shutting down", "shutdown"),
    ("closed by the server", "shutdown"),
    ("internal error", "internal_error"),
)
CLOSE_LABELS: tuple[str, ...] = tuple(dict.fromkeys(label for _, label in CLOSE_KINDS)) + ("other",)


def close_kind(reason: str | None) -> str:
    """The label of a close reason (``other`` for one this table does not know)."""
    if reason:
        for prefix, label in CLOSE_KINDS:
            if reason.startswith(prefix):
                return label
    return "other"


class Histogram:
    """Counts per fixed upper bound (the last slot is +Inf), their sum and count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), +Inf last: Prometheus' buckets."""
        total, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            total += n
            out.append((bound, total))
        return out

    def merge(self, other: Histogram) -> None:
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets do not add up")
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.sum += other.sum


class ShellStats:
    """The shell's counters. The shell writes them; exporters only read."""

    __slots__ = ("opened", "closed", "received", "sent", "spin_seconds", "commit_seconds")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = dict.fromkeys(CLOSE_LABELS, 0)
        # Keyed by packet class, every class present, so the shell's increment is a
        # plain ``d[type(p)] += 1``; exporters turn classes into tags.
        self.received = dict.fromkeys(CLIENT_PACKETS, 0)
        self.sent = dict.fromkeys(SERVER_PACKETS, 0)
        self.spin_seconds = Histogram(SPIN_BUCKETS)
        self.commit_seconds = Histogram(COMMIT_BUCKETS)

    def connection_closed(self, reason: str | None) -> None:
        self.closed[close_kind(reason)] += 1

    def merge(self, other: ShellStats) -> None:
        """Add ``other``'s figures to these (one process's figures into a sum)."""
        self.opened += other.opened
        for table, more in ((self.closed, other.closed), (self.received, other.received), (self.sent, other.sent)):
            for key, n in more.items():
                table[key] = table.get(key, 0) + n
        self.spin_seconds.merge(other.spin_seconds)
        self.commit_seconds.merge(other.commit_seconds)
