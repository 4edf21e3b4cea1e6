"""LGMP load generator: rooms of a host and six bots playing flat out, from one process.

    python -m tools.loadgen --port 1111 --server-pid PID --rooms 32 --duration 10
    python -m tools.loadgen --port 1111 --server-pid PID --rooms 1000 --spin-rate 1
    python -m tools.loadgen --port 1111 --server-pid PID --idle 19000 --rooms 10

It runs in its own process against a server that is already running (ours, or
``tools.baseline_server``) and talks LGMP over loopback TCP like any client.

Workloads
---------
* **storm** (default): ``--rooms`` rooms, each a host and ``--bots`` bots. The
  host starts a game as soon as every bot is ready and starts the next one at
  once after each ``RSET``; the bots answer every ``GAME``/``CARD`` at once, so
  every room always has exactly one packet in flight.
* **paced** (``--spin-rate R``): the same rooms, but each room spins at most R
  times a second (rooms are spread evenly over the period); cards are still
  answered at once.
* **idle** (``--idle N``): first ``N`` connections are seated in lobbies (rooms
  of a host and up to six ready players that never start), then the ``--rooms``
  rooms play as above while the idle ones stay connected. Reports the server's
  RSS per idle connection.

What it measures, over the measurement window (after ``--warmup``):
completed games/s (``FINL`` seen by hosts), packets the server received and
sent per second (counted here: what we sent, what we received), SPIN -> GAME
latency (from sending ``SPIN`` to receiving the ``GAME`` it caused, on the
spinner's connection) p50/p99/max, and -- read from ``/proc`` for
``--server-pid`` -- the server's CPU seconds and RSS (current and peak). With
``--plot FILE.png`` and matplotlib installed (``pip install -e .[bench]``) it
draws latency over time and its distribution. ``--json FILE`` writes every
figure for ``tools.bench``; a summary goes to stdout, progress to stderr.

How it stays light
------------------
The server gets one core and we get the other, so this is not built on trio or
``LGMPClient`` objects: it is one ``epoll`` loop over non-blocking sockets, each
with its own ``codec.Decoder`` (the codec is the only thing that reads LGMP
bytes). The bots' decisions come from ``lgmp.clients.bot.BotBrain``. Everything we send
is built by ``codec.encode`` (once per distinct packet, then cached).
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import math
import os
import random
import resource
import select
import signal
import socket
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from lgmp.clients.bot import BotBrain
from lgmp.game.rules import SEATS
from lgmp.wire.codec import BadBytes, Decoder, encode
from lgmp.wire.packets import (
    CardDealt,
    ClientPacket,
    Direction,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)

S2C = Direction.SERVER_TO_CLIENT
READ_SIZE = 65536
EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP

# --- /proc readings of another process --------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) of ``pid`` so far, in seconds.

    Sums the nanosecond counters of /proc/PID/task/*/schedstat; falls back on the
    clock-tick fields of /proc/PID/stat.
    """
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # that thread ended meanwhile
        return total / 1e9
    except (FileNotFoundError, PermissionError, IndexError, ValueError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` (now) and ``VmHWM`` (peak since start) of ``pid``, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


def processes_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of several processes (a server's parent and its workers), summed."""
    return sum(proc_cpu_seconds(pid) for pid in pids)


def processes_memory_kb(pids: list[int]) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of several processes, summed (each process's peak, so the
    sum of peaks bounds the peak of the sum; forked workers' shared pages count once each)."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for pid in pids:
        for key, value in proc_memory_kb(pid).items():
            out[key] += value
    return out


def machine_busy_seconds() -> float:
    """CPU seconds every CPU of the machine has spent busy (not idle or waiting) so far: /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / _CLK_TCK


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --- statistics ------------------------------------------------------------------------


def percentile(sorted_values: list[float] | array, q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``nan`` when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(samples: array) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1e3,
        "p99_ms": percentile(ordered, 99) * 1e3,
        "max_ms": (ordered[-1] * 1e3) if ordered else math.nan,
        "mean_ms": (sum(ordered) / len(ordered) * 1e3) if ordered else math.nan,
    }


# --- the load --------------------------------------------------------------------------


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 1111
    server_pid: int | None = None
    server_pids: tuple[int, ...] = ()  # every process of the server (a parent and its workers); default (server_pid,)
    rooms: int = 32  # rooms that play
    bots: int = 6  # bots per playing room (1..6)
    duration: float = 10.0  # measurement window, seconds (after warmup)
    warmup: float = 1.0
    games: int = 0  # stop once this many games finished in the window (0: run for duration)
    spin_rate: float = 0.0  # spins per second per room; 0 = flat out
    idle: int = 0  # connections seated in idle lobbies before the rooms play
    setup_rooms: int = 64  # rooms being set up at once
    seed: int = 1
    plot: str | None = None
    json_path: str | None = None
    label: str = ""
    progress: bool = True
    source: str = "127.0.0.1"  # loopback source address to connect from
    # lgmp serve --workers: each worker's relay listener port and its code letters, and
    # where the bots connect: "" (all to --port), "direct" (to their room's owner),
    # "relayed" (to another worker, which relays them to the owner).
    owners: tuple[tuple[int, str], ...] = ()
    route: str = ""
    signal_server: bool = False  # SIGUSR1 to the server when the window opens, SIGUSR2 when it closes


class LoadError(Exception):
    """The load could not be set up (server unreachable, refused joins, ...)."""


_ENCODED: dict[ClientPacket, bytes] = {}


def wire(packet: ClientPacket) -> bytes:
    """``codec.encode``, once per distinct packet."""
    data = _ENCODED.get(packet)
    if data is None:
        data = _ENCODED[packet] = encode(packet)
    return data


_STRT = wire(StartGame())
_JOIN_HOST = wire(JoinRequest("HOST"))


class Conn:
    __slots__ = ("sock", "fd", "room", "index", "wbuf", "decoder", "brain", "seat", "avatar",
                 "spin_at", "connected", "closed", "events")

    def __init__(self, sock: socket.socket, room: Room, index: int, decoder: Decoder):
        self.sock = sock
        self.fd = sock.fileno()
        self.room = room
        self.index = index  # 0 = host, 1..6 = bot
        self.wbuf = b""
        self.decoder = decoder
        self.brain: BotBrain | None = None
        self.seat = 0
        self.avatar = index
        self.spin_at = 0.0  # when our unanswered SPIN was sent (0: none)
        self.connected = False
        self.closed = False
        self.events = EPOLLOUT


class Room:
    __slots__ = ("id", "conns", "code", "bots", "ready", "set_up", "idle", "playing", "next_spin",
                 "games", "rng")

    def __init__(self, rid: int, bots: int, *, idle: bool, rng: random.Random):
        self.id = rid
        self.conns: list[Conn] = []
        self.code = ""
        self.bots = bots
        self.ready = 0
        self.set_up = False  # every bot ready (or the setup failed)
        self.idle = idle
        self.playing = False
        self.next_spin = 0.0
        self.games = 0
        self.rng = rng


class LoadGen:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.timers: list[tuple[float, int, Callable, tuple]] = []
        self._seq = 0
        self.rng = random.Random(cfg.seed)
        self.period = 1.0 / cfg.spin_rate if cfg.spin_rate > 0 else 0.0
        self.addr = (cfg.host, cfg.port)
        # counters (reset at the start of the window)
        self.sent = 0
        self.received = 0
        self.games = 0
        self.lat_t = array("d")
        self.lat_v = array("d")
        self.measuring = False
        self.window_start = 0.0
        self.stopping = False
        # setup book-keeping
        self.pending_rooms: list[Room] = []
        self.setting_up = 0
        self.rooms_ready = 0
        self.rooms_failed = 0
        self.conns_open = 0
        self.errors: dict[str, int] = {}
        self.closed_by_server = 0
        self.bots_relayed = 0  # --route spread: bot connections sent to a non-owner (relayed there)
        self.bots_placed = 0
        self.on_room_ready: Callable[[Room], None] = lambda room: None

    # --- tiny event loop ---------------------------------------------------------------

    def call_at(self, when: float, fn: Callable, *args) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (when, self._seq, fn, args))

    def run_until(self, done: Callable[[], bool], deadline: float = math.inf, tick: Callable[[float], None] | None = None) -> None:
        ep_poll, conns, timers = self.ep.poll, self.conns, self.timers
        perf = time.perf_counter
        next_tick = perf() + 1.0
        while not done():
            now = perf()
            if now >= deadline:
                return
            timeout = min(deadline, next_tick) - now
            if timers:
                timeout = min(timeout, timers[0][0] - now)
            for fd, ev in ep_poll(max(0.0, timeout)):
                conn = conns.get(fd)
                if conn is None:
                    continue
                if ev & EPOLLOUT:
                    self._writable(conn)
                if ev & (EPOLLIN | EPOLLERR | EPOLLHUP) and not conn.closed:
                    self._readable(conn)
            if timers:
                now = perf()
                while timers and timers[0][0] <= now:
                    _, _, fn, args = heapq.heappop(timers)
                    fn(*args)
            if tick is not None and perf() >= next_tick:
                next_tick = perf() + 1.0
                tick(perf())

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    # --- connections ---------------------------------------------------------------------

    def open(self, room: Room, index: int) -> Conn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.cfg.source != "127.0.0.1":
            sock.bind((self.cfg.source, 0))
        conn = Conn(sock, room, index, Decoder(S2C))
        room.conns.append(conn)
        addr = self._address(room, index)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            conn.closed = True
            raise LoadError(f"cannot connect to {addr[0]}:{addr[1]}: {os.strerror(err)}")
        self.conns[conn.fd] = conn
        self.ep.register(conn.fd, EPOLLOUT)
        self.conns_open += 1
        return conn

    def _address(self, room: Room, index: int) -> tuple[str, int]:
        """Hosts go to --port; with --route, bots go to their room's owner or past it."""
        owners = self.cfg.owners
        if index == 0 or not self.cfg.route or not owners:
            return self.addr
        at = next(i for i, (_, letters) in enumerate(owners) if room.code[0] in letters)
        if self.cfg.route == "relayed":
            at = (at + 1) % len(owners)
        elif self.cfg.route == "spread":  # in turn, owner or not, as behind a plain round-robin balancer
            relayed = room.code[0] not in owners[index % len(owners)][1]
            self.bots_relayed += relayed
            self.bots_placed += 1
            at = index % len(owners)
        return (self.cfg.host, owners[at][0])

    def close(self, conn: Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.fd, None)
        try:
            self.ep.unregister(conn.fd)
        except (OSError, ValueError):
            pass
        conn.sock.close()
        self.conns_open -= 1

    def close_all(self) -> None:
        for conn in list(self.conns.values()):
            self.close(conn)

    def _writable(self, conn: Conn) -> None:
        if not conn.connected:
            err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.error(f"connect: {os.strerror(err)}")
                self._lost(conn)
                return
            conn.connected = True
            self._set_events(conn, EPOLLIN)
            self._on_connected(conn)
        if conn.wbuf and not conn.closed:
            data, conn.wbuf = conn.wbuf, b""
            self._send(conn, data)
            if not conn.wbuf:
                self._set_events(conn, EPOLLIN)

    def _set_events(self, conn: Conn, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self.ep.modify(conn.fd, events)

    def send(self, conn: Conn, data: bytes) -> None:
        if conn.closed:
            return
        if self.measuring:
            self.sent += 1
        if conn.wbuf or not conn.connected:
            conn.wbuf += data
            return
        self._send(conn, data)

    def _send(self, conn: Conn, data: bytes) -> None:
        try:
            n = conn.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.error(f"send: {exc.__class__.__name__}")
            self._lost(conn)
            return
        if n < len(data):
            conn.wbuf = data[n:] + conn.wbuf
            self._set_events(conn, EPOLLIN | EPOLLOUT)

    def _readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self.error(f"recv: {exc.__class__.__name__}")
            self._lost(conn)
            return
        if not data:
            self._lost(conn)
            return
        now = time.perf_counter()
        decoder = conn.decoder
        decoder.receive_data(data)
        while (found := decoder.take_packet()) is not None:
            if found.__class__ is BadBytes:
                self.error(f"bad bytes from the server: {found.error()}")
                self._lost(conn)
                return
            self._packet(conn, found, now)
            if conn.closed:
                return

    def _lost(self, conn: Conn) -> None:
        """The server closed ``conn`` (or it failed)."""
        if conn.closed:
            return
        self.close(conn)
        if not self.stopping:
            self.closed_by_server += 1
            room = conn.room
            if not room.set_up:
                self.error("connection lost during setup")
                self._room_set_up(room, failed=True)

    # --- protocol --------------------------------------------------------------------------

    def _on_connected(self, conn: Conn) -> None:
        if conn.index == 0:
            self.send(conn, _JOIN_HOST)
        else:
            self.send(conn, wire(JoinRequest(conn.room.code)))

    def _packet(self, conn: Conn, packet, now: float) -> None:
        if self.measuring:
            self.received += 1
        cls = type(packet)
        room = conn.room
        if conn.index == 0:  # the host
            if cls is FinalResults:
                room.games += 1
                if self.measuring:
                    self.games += 1
            elif cls is Reset:
                if room.playing and not self.stopping:
                    self._start_game(room, now)
            elif cls is JoinResponse:
                if packet.response != JoinAnswer.HOST:
                    self.error(f"JOIN HOST answered {packet.response}")
                    self._lost(conn)
                    return
                room.code = packet.room
                for i in range(1, room.bots + 1):
                    try:
                        self.open(room, i)
                    except LoadError as exc:
                        self.error(str(exc))
            return
        brain = conn.brain
        if cls is GameUpdate:
            if conn.spin_at:
                if self.measuring:
                    self.lat_t.append(now - self.window_start)
                    self.lat_v.append(now - conn.spin_at)
                conn.spin_at = 0.0
            if brain is not None:
                for reply in brain.react(packet):
                    if type(reply) is Spin:
                        self._spin(conn, reply, now)
                    else:
                        self.send(conn, wire(reply))
        elif cls is CardDealt or cls is FinalResults:
            if brain is not None:
                for reply in brain.react(packet):
                    self.send(conn, wire(reply))
        elif cls is Reset:
            if brain is not None:
                conn.brain = BotBrain(conn.seat, room.rng)
        elif cls is ReadyResponse:
            if packet.response == ReadyAnswer.ACCEPTED:
                conn.seat = packet.avatars.index(conn.avatar) + 1
                conn.brain = BotBrain(conn.seat, room.rng)
                room.ready += 1
                if room.ready == room.bots:
                    self._room_set_up(room)
            elif packet.response != ReadyAnswer.UPDATE:
                self.error(f"REDY answered {packet.response}")
                self._room_set_up(room, failed=True)
        elif cls is JoinResponse:
            if packet.response == JoinAnswer.PLAYER:
                self.send(conn, wire(ReadyRequest(f"Bot{conn.index}", conn.avatar)))
            else:
                self.error(f"JOIN {room.code} answered {packet.response}")
                self._room_set_up(room, failed=True)

    def _spin(self, conn: Conn, spin: Spin, now: float) -> None:
        room = conn.room
        if self.period and now < room.next_spin:
            self.call_at(room.next_spin, self._send_spin, conn, spin)
        else:
            self._send_spin(conn, spin)

    def _send_spin(self, conn: Conn, spin: Spin) -> None:
        if self.stopping or conn.closed:
            return
        now = time.perf_counter()
        room = conn.room
        if self.period:
            room.next_spin = max(room.next_spin + self.period, now - self.period)
        conn.spin_at = now
        self.send(conn, wire(spin))

    def _start_game(self, room: Room, now: float) -> None:
        host = room.conns[0]
        if not host.closed:
            self.send(host, _STRT)

    # --- setting rooms up ---------------------------------------------------------------------

    def _room_set_up(self, room: Room, *, failed: bool = False) -> None:
        if room.set_up:
            return
        room.set_up = True
        self.setting_up -= 1
        if failed:
            self.rooms_failed += 1
        else:
            self.rooms_ready += 1
            self.on_room_ready(room)
        self._setup_more()

    def _setup_more(self) -> None:
        while self.pending_rooms and self.setting_up < self.cfg.setup_rooms:
            room = self.pending_rooms.pop()
            self.setting_up += 1
            try:
                self.open(room, 0)
            except LoadError as exc:
                self.error(str(exc))
                self.setting_up -= 1
                raise

    def set_up(self, rooms: list[Room], what: str) -> float:
        """Connect, JOIN and REDY every room's members; seconds it took."""
        started = time.perf_counter()
        self.pending_rooms = list(reversed(rooms))
        self.rooms_ready = self.rooms_failed = 0
        target = len(rooms)
        self._setup_more()

        def done() -> bool:
            return self.rooms_ready + self.rooms_failed >= target

        def tick(now: float) -> None:
            self.progress(f"setting up {what}: {self.rooms_ready}/{target} rooms, {self.conns_open} connections open")

        self.run_until(done, deadline=started + max(60.0, target * 0.05), tick=tick)
        if not done():
            raise LoadError(f"setting up {what} timed out: {self.rooms_ready}/{target} rooms ready")
        if self.rooms_ready < target:
            raise LoadError(f"setting up {what}: only {self.rooms_ready}/{target} rooms ready ({self.errors})")
        return time.perf_counter() - started

    def progress(self, line: str) -> None:
        if self.cfg.progress:
            label = f"[{self.cfg.label}] " if self.cfg.label else ""
            print(f"loadgen: {label}{line}", file=sys.stderr, flush=True)

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        pid = cfg.server_pid
        pids = list(cfg.server_pids or ([pid] if pid else []))
        bots = max(1, min(6, cfg.bots))
        result: dict = {"label": cfg.label, "mode": "idle" if cfg.idle else ("paced" if self.period else "storm"),
                        "rooms": cfg.rooms, "bots": bots, "spin_rate": cfg.spin_rate}
        need = cfg.idle + cfg.rooms * (bots + 1) + 64
        limit = raise_nofile_limit(need)
        if limit < need:
            raise LoadError(f"need {need} open files but RLIMIT_NOFILE allows {limit}: run fewer connections "
                            "or several load generators")
        rid = 0
        mem0 = processes_memory_kb(pids) if pid else {}

        # 1. Idle lobbies: rooms of a host and up to six ready players that never start.
        if cfg.idle:
            idle_rooms = []
            left = cfg.idle
            while left > 0:
                size = min(7, left)
                if size == 1:  # a lone host is not "seated"; fold it into the previous room
                    break
                idle_rooms.append(Room(rid, size - 1, idle=True, rng=random.Random(self.rng.random())))
                rid += 1
                left -= size
            idle_conns = sum(r.bots + 1 for r in idle_rooms)
            self.progress(f"seating {idle_conns} idle connections in {len(idle_rooms)} lobbies")
            cpu0 = processes_cpu_seconds(pids) if pid else 0.0
            setup_s = self.set_up(idle_rooms, "idle lobbies")
            time.sleep(0.5)  # let the server finish its last writes before reading its memory
            mem1 = processes_memory_kb(pids) if pid else {}
            result["idle"] = {
                "connections": idle_conns,
                "rooms": len(idle_rooms),
                "setup_s": setup_s,
                "setup_server_cpu_s": (processes_cpu_seconds(pids) - cpu0) if pid else None,
            }
            if pid:
                delta = mem1["VmRSS"] - mem0["VmRSS"]
                result["idle"].update({
                    "rss_before_kb": mem0["VmRSS"],
                    "rss_after_kb": mem1["VmRSS"],
                    "rss_per_conn_kb": delta / idle_conns,
                    "rss_total_per_conn_kb": mem1["VmRSS"] / idle_conns,
                })
            self.progress(f"idle connections seated in {setup_s:.1f} s"
                          + (f"; server RSS {mem0['VmRSS'] / 1024:.1f} -> {mem1['VmRSS'] / 1024:.1f} MiB, "
                             f"{result['idle']['rss_per_conn_kb']:.2f} KiB per connection" if pid else ""))

        # 2. The rooms that play.
        rooms = [Room(rid + i, bots, idle=False, rng=random.Random(self.rng.random())) for i in range(cfg.rooms)]
        setup_s = self.set_up(rooms, "playing rooms") if rooms else 0.0
        result["setup_s"] = setup_s
        result["connections"] = self.conns_open

        go = time.perf_counter()
        for i, room in enumerate(rooms):
            room.playing = True
            if self.period:  # spread the rooms evenly over one period
                at = go + self.period * i / len(rooms)
                room.next_spin = at
                self.call_at(at, self._start_game, room, at)
            else:
                self._start_game(room, go)
        if cfg.warmup > 0:
            self.progress(f"{len(rooms)} rooms playing; warming up for {cfg.warmup:g} s")
            self.run_until(lambda: False, deadline=go + cfg.warmup)

        # 3. The measurement window.
        self.sent = self.received = self.games = 0
        self.measuring = True
        if cfg.signal_server and pid:
            os.kill(pid, signal.SIGUSR1)  # tools.bench_profile: start profiling
        cpu_start = processes_cpu_seconds(pids) if pid else 0.0
        busy_start = machine_busy_seconds()
        self_start = resource.getrusage(resource.RUSAGE_SELF)
        self.window_start = start = time.perf_counter()
        last = {"t": start, "sent": 0, "received": 0, "games": 0, "lat": 0}
        closed_before = self.closed_by_server

        def tick(now: float) -> None:
            dt = now - last["t"]
            lat = self.lat_v[last["lat"]:]
            p99 = percentile(sorted(lat), 99) * 1e3 if len(lat) else math.nan
            self.progress(
                f"{now - start:5.1f}/{cfg.duration:g} s: {(self.games - last['games']) / dt:7.1f} games/s, "
                f"{(self.sent - last['sent']) / dt:8.0f} pkts in/s, {(self.received - last['received']) / dt:8.0f} pkts out/s, "
                f"SPIN->GAME p99 {p99:6.2f} ms")
            last.update(t=now, sent=self.sent, received=self.received, games=self.games, lat=len(self.lat_v))

        games_target = cfg.games
        done = (lambda: self.games >= games_target) if games_target else (lambda: False)
        deadline = start + cfg.duration if cfg.duration > 0 else math.inf
        self.run_until(done, deadline=deadline, tick=tick)
        end = time.perf_counter()
        cpu_end = processes_cpu_seconds(pids) if pid else 0.0
        busy_end = machine_busy_seconds()
        self_end = resource.getrusage(resource.RUSAGE_SELF)
        if cfg.signal_server and pid:
            os.kill(pid, signal.SIGUSR2)  # tools.bench_profile: stop and write the profile
        self.measuring = False
        self.stopping = True
        window = end - start
        loadgen_cpu = (self_end.ru_utime + self_end.ru_stime) - (self_start.ru_utime + self_start.ru_stime)

        result.update({
            "window_s": window,
            "games": self.games,
            "games_per_s": self.games / window,
            "packets_in": self.sent,
            "packets_out": self.received,
            "packets_in_per_s": self.sent / window,
            "packets_out_per_s": self.received / window,
            "latency": latency_summary(self.lat_v),
            "loadgen_cpu_s": loadgen_cpu,
            # Everything else the machine ran meanwhile (other processes, softirqs):
            # a benchmark on a busy machine is not comparable.
            "other_cpu_s": max(0.0, (busy_end - busy_start) - loadgen_cpu - (cpu_end - cpu_start)),
            "closed_by_server": self.closed_by_server - closed_before,
            "bots_relayed": self.bots_relayed,  # --route spread: bot connections placed on a non-owner
            "bots_placed": self.bots_placed,
            "errors": dict(self.errors),
        })
        if pid:
            cpu = cpu_end - cpu_start
            mem = processes_memory_kb(pids)
            result.update({
                "server_cpu_s": cpu,
                "server_cpu_share": cpu / window,
                "server_rss_kb": mem["VmRSS"],
                "server_peak_rss_kb": mem["VmHWM"],
                "packets_per_cpu_s": (self.sent + self.received) / cpu if cpu > 0 else math.nan,
            })
        self.close_all()
        if cfg.plot:
            result["plot"] = plot_latency(cfg.plot, self.lat_t, self.lat_v, title=cfg.label or result["mode"])
        return result


# --- output ------------------------------------------------------------------------------------


def plot_latency(path: str, times: array, values: array, *, title: str) -> str | None:
    """Latency over time and its distribution, as a PNG; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("loadgen: matplotlib is not installed (pip install -e .[bench]): no plot", file=sys.stderr)
        return None
    if not values:
        return None
    ms = [v * 1e3 for v in values]
    fig, (over_time, dist) = plt.subplots(1, 2, figsize=(12, 4.5))
    over_time.scatter(times, ms, s=1, alpha=0.25, label="each SPIN")
    # p50 / p99 per second
    buckets: dict[int, list[float]] = {}
    for t, v in zip(times, ms):
        buckets.setdefault(int(t), []).append(v)
    secs = sorted(buckets)
    p50 = [percentile(sorted(buckets[s]), 50) for s in secs]
    p99 = [percentile(sorted(buckets[s]), 99) for s in secs]
    over_time.plot([s + 0.5 for s in secs], p50, color="tab:green", label="p50 per second")
    over_time.plot([s + 0.5 for s in secs], p99, color="tab:red", label="p99 per second")
    over_time.set_xlabel("time in the measurement window (s)")
    over_time.set_ylabel("SPIN -> GAME latency (ms)")
    over_time.set_yscale("log")
    over_time.legend(loc="upper right")
    over_time.set_title(f"{title}: latency over time")
    ordered = sorted(ms)
    dist.hist(ordered, bins=100, color="tab:blue", alpha=0.7)
    for q, color in ((50, "tab:green"), (99, "tab:red")):
        v = percentile(ordered, q)
        dist.axvline(v, color=color, linestyle="--", label=f"p{q} {v:.2f} ms")
    dist.set_xlabel("SPIN -> GAME latency (ms)")
    dist.set_ylabel("spins")
    dist.set_yscale("log")
    dist.legend(loc="upper right")
    dist.set_title(f"distribution ({len(ordered)} spins)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_summary(r: dict) -> str:
    lat = r["latency"]
    lines = [
        f"{r['label'] or r['mode']}: {r['rooms']} rooms x (host + {r['bots']} bots), {r['connections']} connections, "
        f"{r['window_s']:.1f} s window (set up in {r['setup_s']:.1f} s)",
        f"  games/s              {r['games_per_s']:.2f} ({r['games']} games)",
        f"  packets in/s         {r['packets_in_per_s']:,.0f}",
        f"  packets out/s        {r['packets_out_per_s']:,.0f}",
        f"  SPIN->GAME latency   p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms "
        f"({lat['count']} spins)",
    ]
    if "server_cpu_s" in r:
        lines += [
            f"  server CPU           {r['server_cpu_s']:.2f} s ({r['server_cpu_share']:.0%} of a core)",
            f"  packets/CPU-second   {r['packets_per_cpu_s']:,.0f}",
            f"  server RSS           {r['server_rss_kb'] / 1024:.1f} MiB now, {r['server_peak_rss_kb'] / 1024:.1f} MiB peak",
        ]
    lines.append(f"  load generator CPU   {r['loadgen_cpu_s']:.2f} s ({r['loadgen_cpu_s'] / r['window_s']:.0%} of a core)")
    lines.append(f"  other CPU            {r['other_cpu_s']:.2f} s ({r['other_cpu_s'] / r['window_s']:.0%} of a core: "
                 "other processes and kernel work on this machine)")
    if "idle" in r:
        i = r["idle"]
        line = f"  idle                 {i['connections']} connections seated in {i['rooms']} lobbies in {i['setup_s']:.1f} s"
        if "rss_per_conn_kb" in i:
            line += (f"; RSS {i['rss_before_kb'] / 1024:.1f} -> {i['rss_after_kb'] / 1024:.1f} MiB = "
                     f"{i['rss_per_conn_kb']:.2f} KiB per connection")
        lines.append(line)
    if r["closed_by_server"] or r["errors"]:
        lines.append(f"  problems             {r['closed_by_server']} closed by the server; {r['errors']}")
    if r.get("plot"):
        lines.append(f"  plot                 {r['plot']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.loadgen", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="server address (loopback only)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-pid", default=None, metavar="PID[,PID...]",
                   help="server process to read CPU and memory of (/proc); several (a parent and its workers) are summed")
    p.add_argument("--rooms", type=int, default=32, help="rooms that play (default 32)")
    p.add_argument("--bots", type=int, default=len(SEATS), help=f"bots per playing room, 1-{len(SEATS)} (default {len(SEATS)})")
    p.add_argument("--duration", type=float, default=10.0, help="measurement window in seconds (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of play before the window (default 1)")
    p.add_argument("--games", type=int, default=0, help="end the window after this many finished games")
    p.add_argument("--spin-rate", type=float, default=0.0, help="spins per second per room (default 0: flat out)")
    p.add_argument("--idle", type=int, default=0, metavar="N", help="first seat N idle connections in lobbies")
    p.add_argument("--setup-rooms", type=int, default=64, help="rooms set up at once (default 64)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--source", default="127.0.0.1", help="loopback address to connect from")
    p.add_argument("--owners", default="", metavar="PORT=LETTERS[,...]",
                   help="lgmp serve --workers: each worker's relay listener port and code letters (for --route)")
    p.add_argument("--route", choices=["direct", "relayed", "spread"], default=None,
                   help="bots connect to their room's owner (direct), to another worker that relays them (relayed), "
                        "or to each in turn whoever owns the room (spread)")
    p.add_argument("--label", default="")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="latency plot (needs matplotlib)")
    p.add_argument("--json", dest="json_path", default=None, metavar="FILE", help="write every figure as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--signal-server", action="store_true",
                   help="send the server SIGUSR1/SIGUSR2 when the window opens/closes (for tools.bench_profile)")
    return p


def _loopback(host: str) -> bool:
    try:
        return all(info[4][0].startswith("127.") or info[4][0] == "::1"
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.duration <= 0 and args.games <= 0:
        parser.error("give a --duration or a number of --games to stop after")
    if not _loopback(args.host) or not _loopback(args.source):
        print("loadgen: only loopback addresses (127.0.0.0/8) may be used", file=sys.stderr)
        return 2
    pids = tuple(int(p) for p in args.server_pid.split(",")) if args.server_pid else ()
    owners = tuple((int(port), letters) for port, _, letters in (o.partition("=") for o in args.owners.split(",") if o))
    if args.route and len(owners) < 2:
        parser.error("--route needs --owners with at least two workers")
    cfg = Config(
        host=args.host, port=args.port, server_pid=pids[0] if pids else None, server_pids=pids,
        owners=owners, route=args.route or "", rooms=args.rooms, bots=args.bots,
        duration=args.duration, warmup=args.warmup, games=args.games, spin_rate=args.spin_rate, idle=args.idle,
        setup_rooms=args.setup_rooms, seed=args.seed, plot=args.plot, json_path=args.json_path,
        label=args.label, progress=not args.quiet, source=args.source, signal_server=args.signal_server,
    )
    gen = LoadGen(cfg)
    try:
        result = gen.run()
    except LoadError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        gen.stopping = True
        gen.close_all()
        return 1
    print(format_summary(result), flush=True)
    if cfg.json_path:
        with open(cfg.json_path, "w") as f:
            json.dump(result, f, indent=1, allow_nan=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
