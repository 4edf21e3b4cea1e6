"""Live spectators: one bounded queue per viewer, fed from the core's events, never blocking.

Theory of operation
-------------------
A viewer is one open Server-Sent Events stream on one room. ``join`` gives it a
queue (a trio memory channel of ``viewer_queue`` messages) holding the room as
it is now; from then on:

* the server's event watcher calls ``observe(events)`` inside the game loop; it
  only marks the rooms that changed (a set add and an event set: no rendering,
  no I/O, nothing that can wait);
* one publisher task (``run``) renders each changed room once, at most every
  ``UPDATE_INTERVAL``, and puts the same bytes in every viewer's queue with
  ``send_nowait``. A queue that is full belongs to a viewer that stopped reading:
  it is dropped (its stream is cancelled; a browser's EventSource reconnects and
  starts afresh), so a slow or vanished viewer costs the room nothing;
* when the room closes, each viewer gets a ``closed`` message and its queue ends.

Limits (``Limits.max_viewers_per_room``, ``Limits.max_viewers``) are checked in
``join``, which raises ``Refused`` with the limit's name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import trio

from ..limits import Limits
from ..rooms.events import RoomClosed
from .metrics import SpectatorCounts

log = logging.getLogger("lgmp.http.spectators")

# A person cannot follow more than a few board changes a second, and a bot game
# makes hundreds: coalescing to this interval bounds the rendering cost per room
# whatever the game's pace (and the bytes per viewer).
UPDATE_INTERVAL = 0.2
# Sent on an idle stream so proxies and browsers keep it open, and so a viewer
# that went away is noticed by a failed write.
HEARTBEAT = 15.0
# How long a browser waits before reconnecting a dropped stream (SSE ``retry``).
RECONNECT_MS = 2000


def sse(event: str, data: object) -> bytes:
    """One Server-Sent Events message: an event name and a JSON payload on one data line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Refused(Exception):
    """A viewer limit is reached; ``reason`` names it (a metric label)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Viewer:
    __slots__ = ("code", "send", "receive", "cancel_scope", "dropped")

    def __init__(self, code: str, size: int):
        self.code = code
        self.send, self.receive = trio.open_memory_channel[bytes](size)
        self.cancel_scope = trio.CancelScope()  # the stream runs inside it; cancelled when dropped
        self.dropped = False


# (room code, whole) -> its update message; None if there is no such room (or, when
# not ``whole``, nothing changed since the room's previous update, which is all a
# message that is not whole carries).
Render = Callable[[str, bool], "bytes | None"]


class Spectators:
    def __init__(self, limits: Limits, counts: SpectatorCounts, render: Render, *, interval: float = UPDATE_INTERVAL):
        self.limits = limits
        self.counts = counts
        self.render = render
        self.interval = interval
        self.rooms: dict[str, set[Viewer]] = {}
        self.total = 0
        self._dirty: set[str] = set()
        self._fresh: set[str] = set()  # rooms with a viewer that joined since their last update
        self._wake = trio.Event()

    # --- viewers ---------------------------------------------------------------------

    def join(self, code: str) -> Viewer | None:
        """A new viewer of ``code``, its queue holding the room as it is now; None if
        there is no such room. Raises ``Refused`` at a limit."""
        if self.total >= self.limits.max_viewers:
            self.counts.refused["server_full"] += 1
            raise Refused("server_full")
        viewers = self.rooms.get(code)
        if viewers is not None and len(viewers) >= self.limits.max_viewers_per_room:
            self.counts.refused["room_full"] += 1
            raise Refused("room_full")
        first = self.render(code, True)
        if first is None:
            return None
        viewer = Viewer(code, self.limits.viewer_queue)
        viewer.send.send_nowait(first)
        self._fresh.add(code)
        self.rooms.setdefault(code, set()).add(viewer)
        self.total += 1
        return viewer

    def leave(self, viewer: Viewer) -> None:
        viewers = self.rooms.get(viewer.code)
        if viewers is None or viewer not in viewers:
            return
        viewers.discard(viewer)
        if not viewers:
            del self.rooms[viewer.code]
            self._fresh.discard(viewer.code)
        self.total -= 1
        viewer.send.close()

    def _drop(self, viewer: Viewer) -> None:
        viewer.dropped = True
        self.counts.dropped += 1
        self.leave(viewer)
        viewer.cancel_scope.cancel()

    # --- from the server's loop ----------------------------------------------------------

    def observe(self, events: list) -> None:
        """Note which watched rooms changed. Called with every batch: cheap, never blocks."""
        rooms = self.rooms
        if not rooms:
            return
        for event in events:
            code = getattr(event, "room", None)
            if code in rooms:
                if type(event) is RoomClosed:
                    self.close_room(code, event.reason)
                else:
                    self._dirty.add(code)
                    self._wake.set()

    def close_room(self, code: str, reason: str) -> None:
        """Tell every viewer of ``code`` the room is gone, and end their streams."""
        message = sse("closed", {"reason": reason})
        self._dirty.discard(code)
        for viewer in list(self.rooms.get(code, ())):
            try:
                viewer.send.send_nowait(message)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            self.leave(viewer)

    def close_all(self, reason: str) -> None:
        for code in list(self.rooms):
            self.close_room(code, reason)

    # --- the publisher -----------------------------------------------------------------------

    def publish(self, code: str) -> None:
        """Render ``code`` once and queue it to each of its viewers; drop the full ones."""
        viewers = self.rooms.get(code)
        if not viewers:
            return
        # A viewer that joined since the last update has the room as it was then, not
        # as the last update left it: send everything to all of them this once.
        message = self.render(code, code in self._fresh)
        self._fresh.discard(code)
        if message is None:
            return  # nothing to show (or the room is gone: its RoomClosed ends the streams)
        for viewer in list(viewers):
            try:
                viewer.send.send_nowait(message)
            except trio.WouldBlock:
                log.info("[%s] a spectator stopped reading: dropped", code)
                self._drop(viewer)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.leave(viewer)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Publish changed rooms, each at most once per ``interval``, until cancelled."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            dirty, self._dirty = self._dirty, set()
            for code in dirty:
                try:
                    self.publish(code)
                except Exception:  # a rendering bug costs that update, never the server
                    log.exception("[%s] rendering a spectator update failed", code)
            await trio.sleep(self.interval)
