"""Recent activity in fixed time buckets, for the overview's chart and its games per minute.

Pure: fed the core's events with the core's clock (``now``), it keeps the last
``BUCKETS`` buckets of ``BUCKET_SECONDS`` each.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ..rooms.events import GameOver, GameStarted, PieceMoved, PlayerJoined

BUCKET_SECONDS = 10.0  # fine enough to see a game move, coarse enough to stay a small chart
BUCKETS = 60  # ten minutes: what an operator glancing at the page cares about


@dataclass(slots=True)
class Bucket:
    start: float  # the core's clock, a multiple of BUCKET_SECONDS
    moves: int = 0  # pieces moved by spins
    games_started: int = 0
    games_finished: int = 0
    joins: int = 0


class Activity:
    def __init__(self) -> None:
        self.buckets: deque[Bucket] = deque(maxlen=BUCKETS)

    def _bucket(self, now: float) -> Bucket:
        start = (now // BUCKET_SECONDS) * BUCKET_SECONDS
        if not self.buckets or self.buckets[-1].start < start:
            self.buckets.append(Bucket(start))
        return self.buckets[-1]

    def observe(self, events: list, now: float) -> None:
        bucket = None
        for event in events:
            kind = type(event)
            if kind is PieceMoved:
                if not event.by_card:
                    bucket = bucket or self._bucket(now)
                    bucket.moves += 1
            elif kind is GameStarted:
                bucket = bucket or self._bucket(now)
                bucket.games_started += 1
            elif kind is GameOver:
                bucket = bucket or self._bucket(now)
                bucket.games_finished += 1
            elif kind is PlayerJoined:
                bucket = bucket or self._bucket(now)
                bucket.joins += 1

    def recent(self, now: float) -> list[Bucket]:
        """The last BUCKETS buckets up to ``now``, oldest first, empty ones included."""
        last = (now // BUCKET_SECONDS) * BUCKET_SECONDS
        kept = {b.start: b for b in self.buckets}
        starts = [last - i * BUCKET_SECONDS for i in range(BUCKETS - 1, -1, -1)]
        return [kept.get(s) or Bucket(s) for s in starts]

    def games_per_minute(self, now: float, minutes: float = 5.0) -> float:
        """Games finished per minute over the last ``minutes`` (whole buckets)."""
        count = int(minutes * 60 / BUCKET_SECONDS)
        recent = self.recent(now)[-count:]
        return sum(b.games_finished for b in recent) / minutes
