"""What the HTTP side knows of one server, kept from its events alone.

``ServerWatch`` registers itself with ``LGMPServer.watch`` and keeps, per batch of
the core's events: the room views (``RoomViews``), the event counters for the
metrics, the recent activity, and the spectators' change marks. It never reads
the hub's rooms. ``gauges()`` reads what is true now for a scrape.
"""

from __future__ import annotations

import time

import trio

from ..limits import Limits
from ..rooms.events import RoomClosed
from ..rooms.view import RoomView, RoomViews
from ..server.shell import LGMPServer
from .activity import Activity
from .metrics import EventCounts, Gauges, SpectatorCounts
from .spectators import UPDATE_INTERVAL, Render, Spectators


class ServerWatch:
    def __init__(self, server: LGMPServer, *, render: Render | None = None, limits: Limits | None = None,
                 interval: float = UPDATE_INTERVAL):
        self.server = server
        self.views = RoomViews()
        self.counts = EventCounts()
        self.activity = Activity()
        self.spectator_counts = SpectatorCounts()
        self.spectators = Spectators(limits or server.limits, self.spectator_counts, render or (lambda code, whole: None),
                                     interval=interval)
        self.started = time.time()
        server.watch(self.observe)

    def observe(self, events: list, now: float) -> None:
        spectators = self.spectators
        if spectators.rooms and any(type(e) is RoomClosed and e.room in spectators.rooms for e in events):
            self._observe_closing(events)
        else:
            self.views.apply(events)
            spectators.observe(events)
        self.counts.observe(events)
        self.activity.observe(events, now)

    def _observe_closing(self, events: list) -> None:
        """A watched room closes in this batch: its viewers get its last state first
        (the final standings, say), rendered while its view still exists."""
        start = 0
        for i, event in enumerate(events):
            if type(event) is RoomClosed and event.room in self.spectators.rooms:
                self.views.apply(events[start:i])
                self.spectators.observe(events[start:i])
                self.spectators.publish(event.room)
                start = i
        self.views.apply(events[start:])
        self.spectators.observe(events[start:])

    # --- reading --------------------------------------------------------------------

    def room(self, code: str) -> RoomView | None:
        return self.views.rooms.get(code)

    def rooms(self) -> list[RoomView]:
        return list(self.views.rooms.values())

    @staticmethod
    def wall_time(core_time: float) -> float:
        """A time on the core's clock (trio's, monotonic) as a unix time."""
        return time.time() - (trio.current_time() - core_time)

    @staticmethod
    def now() -> float:
        return trio.current_time()

    def uptime(self) -> float:
        return time.time() - self.started

    def gauges(self) -> Gauges:
        rooms = {"lobby": 0, "game": 0}
        players = {"present": 0, "absent": 0}
        for view in self.views.rooms.values():
            rooms[view.phase] = rooms.get(view.phase, 0) + 1
            for seat in view.seats.values():
                players["present" if seat.present else "absent"] += 1
        return Gauges(self.server.open_connections, rooms, players, self.spectators.total)
