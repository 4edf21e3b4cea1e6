"""Every limit the server enforces, with its default and the reason for it.

One frozen dataclass so the pure core, the trio shell and the CLI agree. Times
are seconds; 0 turns a timeout off where noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    # A player's turn, card answer or career choice waits this long before the
    # server plays for them, so one idle phone cannot freeze a party. 60 s is long
    # enough to read a card aloud and argue about it. 0 = wait forever.
    turn_timeout: float = field(default=60.0, metadata={"help": "seconds a player may take to spin, answer or choose before the server plays for them (0 = wait forever)"})

    # A player who dropped mid-game gets this long before the server plays for
    # their seat: enough for a phone to reconnect over flaky Wi-Fi, short enough
    # that the others barely notice.
    leave_grace: float = field(default=5.0, metadata={"help": "seconds a disconnected player's seat waits before the server plays it"})

    # Connections, not rooms, cost memory and file descriptors. The process may
    # hold 20,000 open files; leave room for the listener, logs and the database.
    max_connections: int = field(default=19_500, metadata={"help": "open connections; more are refused at once"})

    # A host can create rooms without players; cap them so room creation cannot
    # exhaust memory. 19,500 connections make at most ~2,800 full rooms.
    max_rooms: int = field(default=5_000, metadata={"help": "rooms at once; JOIN HOST beyond it is answered 3"})

    # A client sends JOIN first; a socket that says nothing is a port scan or a
    # stuck client, holding a descriptor.
    join_timeout: float = field(default=10.0, metadata={"help": "seconds a new connection has to send JOIN"})

    # Once a packet has started it must complete: without a length prefix a peer
    # that sends a byte at a time (slowloris) would otherwise hold the socket.
    packet_timeout: float = field(default=10.0, metadata={"help": "seconds a started packet has to complete (slowloris)"})

    # A room whose lobby sees no packet from anyone for this long is abandoned
    # (the host screen was left on): close it and free its code.
    lobby_idle: float = field(default=1800.0, metadata={"help": "seconds a lobby may see no packet before the room is closed (0 = never)"})

    # Flood control, a token bucket per connection: a burst of this many packets,
    # refilled at packet_rate per second. A real client sends a few packets per
    # turn; anything above this is a bug or an attack, and is closed.
    packet_burst: int = field(default=50, metadata={"help": "packets a connection may send in a burst (flood control)"})
    packet_rate: float = field(default=20.0, metadata={"help": "packets per second a connection may sustain (flood control)"})

    # Well-framed packets that are not allowed now are ignored with a resync and a
    # strike; this many strikes inside strike_window closes the connection. A
    # confused client can recover; a hostile one cannot spin forever.
    max_strikes: int = field(default=10, metadata={"help": "ignored packets within the strike window that close a connection"})
    strike_window: float = field(default=60.0, metadata={"help": "seconds over which strikes are counted"})

    # Packets waiting to be written to one client. A client that stops reading is
    # closed when its queue is full, so it never slows the rest of its room.
    # A whole game sends a player about 200 packets; 256 unsent means it is gone.
    send_queue: int = field(default=256, metadata={"help": "unsent packets queued for one client before it is closed as not reading"})

    # The Unity client (unity-2022) reads at most once a frame and acts on the first
    # packet of each read only, dropping the rest of it: two packets must never
    # arrive together. 50 ms is a frame and a half at 30 fps, with room for Wi-Fi
    # jitter; a human-paced game sends a peer a few packets per move, so the gap
    # costs nothing a player sees.
    unity_packet_gap: float = field(default=0.05, metadata={"help": "seconds between two packets to a unity-2022 client, which acts on only the first packet of each read"})

    # How long shutdown waits for queued RSETs to drain before closing anyway.
    shutdown_grace: float = field(default=2.0, metadata={"help": "seconds shutdown waits for RSETs to drain"})

    # Spectators (lgmp serve --http): each live page holds a socket, a task and a
    # queue. A party has a wall screen and a few friends watching; 50 on one room
    # is already a crowd, and more is a scraper or an attack.
    max_viewers_per_room: int = field(default=50, metadata={"help": "live spectator pages on one room; more are refused (HTTP 503)"})
    # Across the server: each stream costs a descriptor taken from the same pool as
    # players' connections; 500 keeps spectators a small share of max_connections.
    max_viewers: int = field(default=500, metadata={"help": "live spectator pages in total; more are refused (HTTP 503)"})
    # Updates waiting for one viewer. They are coalesced to a few a second per room,
    # so a full queue means the viewer stalled for seconds: it is dropped (its
    # browser reconnects and gets the room afresh) rather than ever slowing the room.
    viewer_queue: int = field(default=16, metadata={"help": "updates queued for one spectator before it is dropped as not reading"})

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
