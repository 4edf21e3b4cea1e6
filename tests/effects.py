"""The core's effects without its room facts, for tests that check what reaches the wire.

Rooms and the hub return effects (``Deliver``, ``CloseMember``, ``StoreGame``,
``PacketIgnored``) interleaved with room facts (``PlayerJoined``, ``PieceMoved``...).
Most room and hub tests assert the exact packets sent; these wrappers let them
compare lists of deliveries and closes only. The facts and ``PacketIgnored`` are
tested in tests/test_events.py.
"""

from __future__ import annotations

from lgmp.rooms import hub as hub_module
from lgmp.rooms import room as room_module
from lgmp.rooms.events import CloseMember, Deliver, StoreGame

WIRE_EFFECTS = (Deliver, CloseMember, StoreGame)


def wire_effects(events: list) -> list:
    return [e for e in events if isinstance(e, WIRE_EFFECTS)]


class Room(room_module.Room):
    """A room whose entry points return only deliveries, closes and stores."""

    def add_player(self, member, now):
        answer, events = super().add_player(member, now)
        return answer, wire_effects(events)

    def handle(self, member, packet, now):
        return wire_effects(super().handle(member, packet, now))

    def remove(self, member, now, reason):
        return wire_effects(super().remove(member, now, reason))

    def tick(self, now):
        return wire_effects(super().tick(now))

    def resync(self, member):
        return wire_effects(super().resync(member))

    def close(self, reason, *, exclude=None):
        return wire_effects(super().close(reason, exclude=exclude))


class Hub(hub_module.Hub):
    """A hub whose entry points return only deliveries, closes and stores."""

    def receive(self, member, packet, now):
        return wire_effects(super().receive(member, packet, now))

    def disconnect(self, member, now, reason):
        return wire_effects(super().disconnect(member, now, reason))

    def tick(self, now):
        return wire_effects(super().tick(now))

    def shutdown(self, reason="the server is shutting down"):
        return wire_effects(super().shutdown(reason))
