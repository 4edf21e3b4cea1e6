"""Every limit the server enforces, with its default and the reason for it.

One frozen dataclass so the pure core, the trio shell and the CLI agree. Times
are seconds; 0 turns a timeout off where noted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    # A player's turn, card answer or career choice waits this long before the
    # server plays for them, so one idle phone cannot freeze a party. 60 s is long
    # enough to read a card aloud and argue about it. 0 = wait forever.
    turn_timeout: float = 60.0

    # A player who dropped mid-game gets this long before the server plays for
    # their seat: enough for a phone to reconnect over flaky Wi-Fi, short enough
    # that the others barely notice.
    leave_grace: float = 5.0

    # Connections, not rooms, cost memory and file descriptors. The process may
    # hold 20,000 open files; leave room for the listener, logs and the database.
    max_connections: int = 19_500

    # A host can create rooms without players; cap them so room creation cannot
    # exhaust memory. 19,500 connections make at most ~2,800 full rooms.
    max_rooms: int = 5_000

    # A client sends JOIN first; a socket that says nothing is a port scan or a
    # stuck client, holding a descriptor.
    join_timeout: float = 10.0

    # Once a packet has started it must complete: without a length prefix a peer
    # that sends a byte at a time (slowloris) would otherwise hold the socket.
    packet_timeout: float = 10.0

    # A room whose lobby sees no packet from anyone for this long is abandoned
    # (the host screen was left on): close it and free its code.
    lobby_idle: float = 1800.0

    # Flood control, a token bucket per connection: a burst of this many packets,
    # refilled at packet_rate per second. A real client sends a few packets per
    # turn; anything above this is a bug or an attack, and is closed.
    packet_burst: int = 50
    packet_rate: float = 20.0

    # Well-framed packets that are not allowed now are ignored with a resync and a
    # strike; this many strikes inside strike_window closes the connection. A
    # confused client can recover; a hostile one cannot spin forever.
    max_strikes: int = 10
    strike_window: float = 60.0

    # Packets waiting to be written to one client. A client that stops reading is
    # closed when its queue is full, so it never slows the rest of its room.
    # A whole game sends a player about 200 packets; 256 unsent means it is gone.
    send_queue: int = 256

    # How long shutdown waits for queued RSETs to drain before closing anyway.
    shutdown_grace: float = 2.0

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
