#!/usr/bin/env python3
"""Network fuzzer: hostile sessions against a live ``lgmp serve`` while bots play a control game.

    python fuzz/net_fuzz.py --sessions 500 --seconds 60

Starts ``python -m lgmp.cli serve --no-db --host 127.0.0.1 --port 0`` (loopback
only; the port is read from its "LGMP server on 127.0.0.1:PORT" line), warms it
up, takes a baseline of its open file descriptors and RSS (/proc/PID), then,
for at most ``--seconds`` and ``--sessions`` sessions, ``--concurrency`` at a
time, runs hostile sessions of these kinds:

* ``garbage``      random bytes, sometimes after a valid JOIN, in random chunks;
* ``mutated``      a valid client stream with byte-level mutations;
* ``disorder``     valid packets in random order (SPIN before JOIN, STRT from a player...);
* ``wrong_member`` JOIN the control room mid-game (must be refused: 5), then play packets;
* ``half``         a packet cut short: closed at once, left hanging, or trickled a byte at a
                   time (slowloris); a hanging one must be closed by the server within its
                   packet timeout;
* ``flood``        a player sends 80+ packets in one write: the server must close it; one
                   that sends 40 must stay open;
* ``strikes``      a host sends ignored packets: the connection must be closed at the
                   10th strike (PROTOCOL.md 10.2), not before;
* ``idle``         connects and says nothing, or only a JOIN that is refused: the server
                   must close it within its JOIN timeout;
* ``chaos_room``   a hostile room (host + 1-4 players) that plays like bots but sends random,
                   mutated, out-of-turn and wrong-member packets, leaves and rejoins.

Every byte the server sends to any session must decode as server->client LGMP.
Meanwhile control rooms of ``--bots`` bots (lgmp.clients.bot.play_bot, hosted with
LGMPClient.host_room and started when every bot is ready) play full games one
after another, and one more after the storm. Checked:

* the server never dies, and exits 0 on SIGTERM with no error/traceback in its log;
* every control game reaches FINL with places 1..n for the seated bots, catalogue
  careers with their salaries, 0/"" for empty seats, the same FINL for every bot;
* the timeouts and limits above are enforced on the wire;
* afterwards the server's open fds (the proxy for its connection tasks) return to
  the baseline, and its RSS is within ``--rss-tolerance-mb`` of the baseline.

It prints a summary and exits 1 if any check failed. Findings that match a known,
still-open bug (fuzz/room_target.py KNOWN_BUGS) are reported but do not fail the run.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from lgmp.clients.bot import BotBrain, play_bot  # noqa: E402
from lgmp.clients.client import ConnectionClosed, LGMPClient  # noqa: E402
from lgmp.wire.codec import BadBytes, Decoder, encode  # noqa: E402
from lgmp.wire.errors import LGMPError  # noqa: E402
from lgmp.wire.packets import (  # noqa: E402
    CardAnswer,
    CareerChoice,
    Direction,
    FinalResults,
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
from lgmp.game.rules import ALL_CAREERS, SEATS, wire_salary  # noqa: E402

from fuzz import packetgen  # noqa: E402
from fuzz.room_target import KNOWN_BUGS  # noqa: E402

HOST = "127.0.0.1"
KINDS = {
    "garbage": 12,
    "mutated": 18,
    "disorder": 14,
    "wrong_member": 10,
    "half": 10,
    "flood": 8,
    "strikes": 6,
    "idle": 6,
    "chaos_room": 16,
}
READY_LINE = re.compile(r"LGMP server on (\S+):(\d+)")
BAD_LOG = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|handler error|timer handling failed")


# --- configuration and results -------------------------------------------------------------


@dataclass
class Config:
    sessions: int = 500
    seconds: float = 60.0
    concurrency: int = 48
    seed: int = 0
    bots: int = 4
    bot_delay: float = 0.02
    join_timeout: float = 2.0
    packet_timeout: float = 2.0
    rss_tolerance_mb: float = 16.0
    settle_seconds: float = 20.0
    control_timeout: float = 90.0
    server_args: list[str] = field(default_factory=list)
    verbose: bool = False


@dataclass
class Finding:
    what: str
    detail: str  # the first occurrence's
    known_bug: str | None = None
    count: int = 1


@dataclass
class Summary:
    ok: bool = False
    port: int = 0
    pid: int = 0
    duration: float = 0.0
    sessions: Counter = field(default_factory=Counter)
    connections: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    closed_by_server: int = 0
    control_games: int = 0
    control_durations: list[float] = field(default_factory=list)
    fds_baseline: int = 0
    fds_peak: int = 0
    fds_final: int = 0
    rss_baseline_kb: int = 0
    rss_peak_kb: int = 0
    rss_final_kb: int = 0
    server_exit: int | None = None
    log_errors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def total_sessions(self) -> int:
        return sum(self.sessions.values())

    def find(self, what: str, detail: str, known_bug: str | None = None) -> None:
        """Record a failed check (once per kind, counted); ``known_bug`` names an open bug it reproduces."""
        if known_bug is not None and known_bug not in KNOWN_BUGS:
            known_bug = None  # fixed since: then it is a finding like any other
        for f in self.findings:
            if f.what == what:
                f.count += 1
                return
        self.findings.append(Finding(what, detail, known_bug))

    def render(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.sessions.items()))
        durations = (f", {min(self.control_durations):.1f}-{max(self.control_durations):.1f} s each"
                     if self.control_durations else "")
        unknown = [f for f in self.findings if not f.known_bug]
        known = [f for f in self.findings if f.known_bug]
        lines = [
            "net_fuzz summary",
            f"  server: pid {self.pid} on {HOST}:{self.port}, ran {self.duration:.1f} s, "
            f"exit code {self.server_exit} after SIGTERM, {len(self.log_errors)} error lines in its log",
            f"  hostile sessions: {self.total_sessions} ({kinds})",
            f"  connections {self.connections}, bytes sent {self.bytes_sent}, server packets decoded "
            f"{self.packets_received}, connections closed by the server {self.closed_by_server}",
            f"  control games: {self.control_games} played to FINL and verified{durations}",
            f"  fds: baseline {self.fds_baseline}, peak {self.fds_peak}, final {self.fds_final}",
            f"  RSS: baseline {self.rss_baseline_kb / 1024:.1f} MiB, peak {self.rss_peak_kb / 1024:.1f} MiB, "
            f"final {self.rss_final_kb / 1024:.1f} MiB",
        ]
        for f in unknown:
            lines.append(f"  FINDING ({f.count}x): {f.what}: {f.detail}")
        for f in known:
            lines.append(f"  known bug reproduced ({f.count}x, {f.known_bug}): {f.what}: {f.detail}")
        if not self.findings:
            lines.append("  findings: none")
        for line in self.log_errors[:10]:
            lines.append(f"  server log: {line}")
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


# --- the server process --------------------------------------------------------------------


def start_server(cfg: Config, log_path: Path) -> tuple[subprocess.Popen, int]:
    cmd = [
        sys.executable, "-m", "lgmp.cli", "--log-level", "warning", "serve", "--no-db", "--no-http",
        "--host", HOST, "--port", "0", "--seed", str(cfg.seed),
        "--join-timeout", str(cfg.join_timeout), "--packet-timeout", str(cfg.packet_timeout),
        # Every session and the control bots come from 127.0.0.1: the per-source limits
        # would refuse the bots once hostile sessions use up the address's allowance.
        # They are tested from several addresses in tests/test_abuse.py.
        "--max-connections-per-source", "0", "--max-unjoined-per-source", "0",
        "--max-rooms-per-source", "0", "--failed-joins-per-minute", "0",
        *cfg.server_args,
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            match = READY_LINE.search(line.decode(errors="replace"))
            if match:
                host, port = match.group(1), int(match.group(2))
                assert ipaddress.ip_address(host).is_loopback, f"the server is not on loopback: {host}"
                return proc, port
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"lgmp serve did not start: {line!r}, log: {log_path.read_text(errors='replace')[-2000:]}")


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- a hostile connection ------------------------------------------------------------------


class Conn:
    """One raw TCP connection: sends bytes, and checks that whatever the server says decodes."""

    def __init__(self, run: Run, stream: trio.SocketStream):
        self.run = run
        self.stream = stream
        self.decoder = Decoder(Direction.SERVER_TO_CLIENT)
        self.packets: list = []
        self.closed = trio.Event()  # the server closed (EOF or reset)
        self.new_packet = trio.Event()
        self.closing = False  # we closed it ourselves
        self.paused = False  # stop reading (a client whose app hangs)

    @classmethod
    async def open(cls, run: Run, nursery: trio.Nursery, *, read: bool = True) -> Conn:
        stream = await trio.open_tcp_stream(HOST, run.port)
        run.summary.connections += 1
        conn = cls(run, stream)
        if read:
            nursery.start_soon(conn._read)
        return conn

    async def _read(self) -> None:
        try:
            while True:
                if self.paused:
                    await trio.sleep_forever()
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.decoder.receive_data(data)
                packets, bad = [], None
                while (found := self.decoder.next_packet()) is not None:
                    if isinstance(found, BadBytes):
                        bad = found
                        break
                    packets.append(found.packet)
                self.packets += packets
                self.run.summary.packets_received += len(packets)
                if packets:
                    self.new_packet.set()
                    self.new_packet = trio.Event()
                if bad is not None:
                    self.run.summary.find("server sent undecodable bytes", f"{bad.error()} after {self.packets[-3:]!r}")
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        if not self.closed.is_set():
            self.closed.set()
            self.new_packet.set()  # wake wait_packet
            if not self.closing:
                self.run.summary.closed_by_server += 1

    async def send(self, data: bytes) -> bool:
        if self.closed.is_set() or not data:
            return not self.closed.is_set()
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        self.run.summary.bytes_sent += len(data)
        return True

    async def wait_closed(self, seconds: float) -> bool:
        with trio.move_on_after(seconds):
            await self.closed.wait()
        return self.closed.is_set()

    async def wait_packet(self, predicate, seconds: float = 2.0):
        with trio.move_on_after(seconds):
            while True:
                for p in self.packets:
                    if predicate(p):
                        return p
                if self.closed.is_set():
                    return None
                await self.new_packet.wait()
        return None

    async def aclose(self) -> None:
        self.closing = True
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


# --- the run -------------------------------------------------------------------------------------


class Run:
    def __init__(self, cfg: Config, port: int, pid: int, summary: Summary):
        self.cfg = cfg
        self.port = port
        self.pid = pid
        self.summary = summary
        self.rng = random.Random(cfg.seed)
        self.control_code: str | None = None  # set while a control game is running
        self.stop = False

    def sample(self) -> tuple[int, int]:
        fds, rss = proc_fds(self.pid), proc_rss_kb(self.pid)
        self.summary.fds_peak = max(self.summary.fds_peak, fds)
        self.summary.rss_peak_kb = max(self.summary.rss_peak_kb, rss)
        return fds, rss

    # --- control games ---------------------------------------------------------------------

    async def control_game(self, index: int) -> None:
        try:
            await self._control_game(index)
        except trio.TooSlowError:
            self.summary.find("control game did not finish", f"game {index}: no FINL within {self.cfg.control_timeout:g} s")
        except (ConnectionClosed, LGMPError, OSError, trio.BrokenResourceError) as exc:
            self.summary.find("control game broken", f"game {index}: {type(exc).__name__}: {exc}")
        finally:
            self.control_code = None

    async def _control_game(self, index: int) -> None:
        cfg = self.cfg
        started = trio.current_time()
        with trio.fail_after(cfg.control_timeout):
            async with await LGMPClient.connect(HOST, self.port) as host:
                code = await host.host_room()
                results: dict[str, object] = {}

                async def bot(i: int) -> None:
                    name = f"Ctl{index % 100}x{i}"
                    results[name] = await play_bot(HOST, self.port, code, name=name, seed=cfg.seed * 1000 + index * 10 + i,
                                                   delay=cfg.bot_delay)

                async with trio.open_nursery() as nursery:
                    for i in range(cfg.bots):
                        nursery.start_soon(bot, i)
                    await host.wait_for(lambda p: isinstance(p, ReadyResponse) and sum(1 for a in p.avatars if a) == cfg.bots)
                    await host.send(StartGame())
                    self.control_code = code
                    final = await host.wait_for(FinalResults)
                    await host.wait_for(Reset)
                    self.control_code = None
        self.control_code = None
        self.check_final(final, list(results.values()))
        self.summary.control_games += 1
        self.summary.control_durations.append(trio.current_time() - started)

    def check_final(self, final: FinalResults, bots: list) -> None:
        n = self.cfg.bots
        problems = []
        seats = [b.seat for b in bots]
        if len(bots) != n or None in seats or len(set(seats)) != n:
            problems.append(f"bots not all seated: {seats}")
        for b in bots:
            if b.results != final:
                problems.append(f"bot {b.name} saw {b.results!r}, the host {final!r}")
        placed = sorted(s for s in SEATS if final.places[s - 1])
        if placed != sorted(s for s in seats if s):
            problems.append(f"places for seats {placed}, bots in seats {sorted(s for s in seats if s)}")
        if sorted(final.places[s - 1] for s in placed) != list(range(1, n + 1)):
            problems.append(f"places are not 1..{n}: {final.places}")
        catalogue = {c.name: wire_salary(c) for c in ALL_CAREERS}  # FINL spells careers as the catalogue does
        for s in SEATS:
            career, salary = final.careers[s - 1], final.salaries[s - 1]
            if s in placed:
                if catalogue.get(career) != salary:
                    problems.append(f"seat {s}: career {career!r} salary {salary} is not a catalogue career")
            elif career or salary:
                problems.append(f"empty seat {s} has {career!r} {salary}")
        if problems:
            self.summary.find("control game results wrong", "; ".join(problems))

    async def control_loop(self) -> None:
        index = 1
        while not self.stop:
            await self.control_game(index)
            index += 1

    # --- hostile sessions --------------------------------------------------------------------

    async def session(self, kind: str, seed: int) -> None:
        rng = random.Random(seed)
        timeout = max(self.cfg.join_timeout, self.cfg.packet_timeout) + 6
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                conns: list[Conn] = []

                async def open_conn(read: bool = True) -> Conn:
                    conn = await Conn.open(self, nursery, read=read)
                    conns.append(conn)
                    return conn

                try:
                    await getattr(self, f"_{kind}")(rng, open_conn)
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ConnectionClosed, LGMPError):
                    pass
                finally:
                    for conn in conns:
                        await conn.aclose()
                    nursery.cancel_scope.cancel()
        self.summary.sessions[kind] += 1

    def client_packet(self, rng: random.Random):
        return packetgen.client_packet(rng, self.control_code)

    async def _garbage(self, rng, open_conn) -> None:
        conn = await open_conn()
        if rng.random() < 0.5:
            await conn.send(encode(JoinRequest(rng.choice(["HOST", self.control_code or "ABCD"]))))
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 600)))
        for chunk in packetgen.chunks(rng, data):
            if not await conn.send(chunk):
                break
            await trio.sleep(rng.choice((0, 0, 0.01, 0.05)))
        await conn.wait_closed(0.5)

    async def _mutated(self, rng, open_conn) -> None:
        conn = await open_conn()
        first = JoinRequest(rng.choice(["HOST", "host", self.control_code or "QZMB"]))
        wire = encode(first) + b"".join(encode(self.client_packet(rng)) for _ in range(rng.randint(1, 12)))
        for chunk in packetgen.chunks(rng, packetgen.mutate(rng, wire)):
            if not await conn.send(chunk):
                break
            await trio.sleep(rng.choice((0, 0.01)))
        await conn.wait_closed(0.3)

    async def _disorder(self, rng, open_conn) -> None:
        conn = await open_conn()
        for _ in range(rng.randint(1, 30)):
            if not await conn.send(encode(self.client_packet(rng))):
                break
            await trio.sleep(rng.choice((0, 0.005, 0.02, 0.06)))
        await conn.wait_closed(0.2)

    async def _wrong_member(self, rng, open_conn) -> None:
        code = self.control_code
        if code is None:
            return await self._disorder(rng, open_conn)
        conn = await open_conn()
        await conn.send(encode(JoinRequest(code.lower() if rng.random() < 0.5 else code)))
        answer = await conn.wait_packet(lambda p: isinstance(p, JoinResponse), 2.0)
        if answer is not None and answer.response not in (JoinAnswer.GAME_STARTED, JoinAnswer.PLAYER):
            self.summary.find("JOIN of a running game not refused with 5", f"{code}: {answer!r}")
        if answer is not None and answer.response == JoinAnswer.PLAYER:
            return  # the game had just ended: we are in its lobby now, leave it alone
        plays = [StartGame(), Spin(rng.randint(1, 6)), CardAnswer(1, -2), CardAnswer(2, 6),
                 CareerChoice(5, "Creative Director", 132), ReadyRequest("Ctl1x0", 1), JoinRequest(code)]
        for _ in range(rng.randint(1, 12)):
            if not await conn.send(encode(rng.choice(plays))):
                break
            await trio.sleep(rng.choice((0, 0.01, 0.05)))

    async def _half(self, rng, open_conn) -> None:
        conn = await open_conn()
        if rng.random() < 0.5:
            await conn.send(encode(JoinRequest("HOST")))
        wire = encode(ReadyRequest("x" * rng.randint(8, 255), 1) if rng.random() < 0.5 else self.client_packet(rng))
        cut = rng.randint(1, len(wire) - 1) if len(wire) > 1 else 0
        mode = rng.choice(("close", "hang", "trickle"))
        if mode == "close" or cut == 0:
            await conn.send(wire[: max(cut, 1)])
            return
        if mode == "trickle":  # slowloris: one byte at a time, so the packet never completes in time
            cut = min(cut, max(1, len(wire) - 40))
        first_byte = trio.current_time()
        await conn.send(wire[:cut])
        limit = self.cfg.packet_timeout + 1.5  # PROTOCOL.md 10.1: closed 10 s (packet_timeout) after its first byte
        if mode == "trickle":
            step = self.cfg.packet_timeout / 5
            for i in range(cut, len(wire) - 1):
                if await conn.wait_closed(step) or trio.current_time() - first_byte > limit:
                    break
                await conn.send(wire[i : i + 1])
        if not await conn.wait_closed(max(0.0, first_byte + limit - trio.current_time())):
            known = "packet-timeout-restarts-on-every-read" if mode == "trickle" else None
            self.summary.find(f"half packet not closed ({mode})",
                              f"{wire[:cut]!r}... of a {len(wire)}-byte packet, first byte {trio.current_time() - first_byte:.1f} s ago "
                              f"(packet timeout {self.cfg.packet_timeout:g} s)", known_bug=known)

    async def _flood(self, rng, open_conn) -> None:
        host = await open_conn()
        await host.send(encode(JoinRequest("HOST")))
        joined = await host.wait_packet(lambda p: isinstance(p, JoinResponse), 2.0)
        if joined is None or joined.response != JoinAnswer.HOST:
            return
        player = await open_conn()
        await player.send(encode(JoinRequest(joined.room)))
        if await player.wait_packet(lambda p: isinstance(p, ReadyResponse), 2.0) is None:
            return
        # REDY changes are answered, never ignored: only the flood limit can close this player.
        count = rng.choice((40, 80, 120, 400))
        burst = b"".join(encode(ReadyRequest(f"Fl{i % 7}", i % 6 + 1)) for i in range(count))
        await player.send(burst)
        closed = await player.wait_closed(1.5)
        if count > 50 and not closed:
            self.summary.find("flood not closed", f"{count} packets in one write, still open")
        if count <= 50 and closed:
            self.summary.find("closed below the flood limit", f"{count} packets in one write closed the connection")

    async def _strikes(self, rng, open_conn) -> None:
        host = await open_conn()
        await host.send(encode(JoinRequest("HOST")))
        if await host.wait_packet(lambda p: isinstance(p, JoinResponse), 2.0) is None:
            return
        # STRT with nobody seated is ignored (a strike); PROTOCOL.md 10.2: 10 within 60 s close.
        for i in range(1, 10):
            await host.send(encode(StartGame()))
            await trio.sleep(0.02)
        if await host.wait_closed(0.3):
            self.summary.find("closed before 10 strikes", "9 ignored STRT closed the host")
            return
        await host.send(encode(StartGame()))
        if not await host.wait_closed(1.0):
            self.summary.find("not closed at the 10th strike", "10 ignored STRT within 1 s, host still open",
                              known_bug="strike-limit-off-by-one")
            await host.send(encode(StartGame()))
            if not await host.wait_closed(1.0):
                self.summary.find("not closed after 11 strikes", "11 ignored STRT within 2 s, host still open")

    async def _idle(self, rng, open_conn) -> None:
        conn = await open_conn()
        refused = rng.random() < 0.5
        if refused:
            await trio.sleep(rng.uniform(0.2, 0.5))  # as a person typing a code would
            await conn.send(encode(JoinRequest(rng.choice(("ZZZQ", "12AB", "\udcff\udcfeAB")))))
            answer = await conn.wait_packet(lambda p: isinstance(p, JoinResponse), 2.0)
            if answer is None or answer.response != JoinAnswer.ROOM_NOT_FOUND:
                self.summary.find("JOIN of an unknown room not answered 4", repr(answer))
        limit = self.cfg.join_timeout + 2.5
        if not await conn.wait_closed(limit):
            if refused:
                self.summary.find("silent after a refused JOIN, never closed",
                                  f"still open {limit:g} s after JOIN 4 (JOIN timeout {self.cfg.join_timeout:g} s)",
                                  known_bug="join-timer-lost-after-refused-join")
            else:
                self.summary.find("silent connection not closed", f"still open after {limit:g} s without JOIN")

    async def _chaos_room(self, rng, open_conn) -> None:
        """A hostile room that plays, but badly: random, mutated, out-of-turn packets, leaves and rejoins."""
        host_conn = await open_conn()
        await host_conn.send(encode(JoinRequest("HOST")))
        joined = await host_conn.wait_packet(lambda p: isinstance(p, JoinResponse), 2.0)
        if joined is None or joined.response != JoinAnswer.HOST:
            return
        code = joined.room
        if rng.random() < 0.2:  # a host that stops reading must not slow its room down
            host_conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            host_conn.paused = True
        players = rng.randint(1, 4)
        seen = {}

        async def player(i: int) -> None:
            conn = await open_conn()
            name, avatar = f"Ch{i}", i + 1
            await conn.send(encode(JoinRequest(code)))
            await conn.send(encode(ReadyRequest(name, avatar)))
            brain = BotBrain(0, rng)
            seen[i] = 0
            until = trio.current_time() + rng.uniform(1.0, 4.0)
            while trio.current_time() < until and not conn.closed.is_set():
                await trio.sleep(rng.choice((0.005, 0.02, 0.05)))
                new = conn.packets[seen[i]:]
                seen[i] = len(conn.packets)
                for p in new:  # learn the seat from the REDY that accepted us
                    if isinstance(p, ReadyResponse) and p.response == ReadyAnswer.ACCEPTED and avatar in p.avatars:
                        brain.seat = p.avatars.index(avatar) + 1
                replies = [r for p in new for r in brain.react(p)]
                roll = rng.random()
                if roll < 0.15:
                    replies.append(self.client_packet(rng))
                elif roll < 0.2:
                    replies.insert(0, rng.choice(replies or [Spin(3)]))  # twice, or out of turn
                wire = b"".join(encode(r) for r in replies)
                if rng.random() < 0.03:
                    wire = packetgen.mutate(rng, wire)
                await conn.send(wire)
                if rng.random() < 0.02:  # leave and rejoin on a fresh connection
                    await conn.aclose()
                    conn = await open_conn()
                    await conn.send(encode(JoinRequest(code)) + encode(ReadyRequest(name.lower(), avatar)))
                    seen[i] = 0

        async with trio.open_nursery() as nursery:
            for i in range(players):
                nursery.start_soon(player, i)
            await trio.sleep(0.2)
            await host_conn.send(encode(StartGame()))
            if rng.random() < 0.3:  # the host plays too: wrong member
                await trio.sleep(rng.uniform(0.2, 2.0))
                await host_conn.send(encode(rng.choice([Spin(4), CardAnswer(2, 6), StartGame(), ReadyRequest("Hst", 2)])))
            if rng.random() < 0.15:  # the host leaves mid-game: RSET to everyone, room gone
                await trio.sleep(rng.uniform(0.2, 2.0))
                await host_conn.aclose()

    async def spawner(self) -> None:
        cfg = self.cfg
        limit = trio.CapacityLimiter(cfg.concurrency)
        kinds, weights = zip(*KINDS.items())
        deadline = trio.current_time() + cfg.seconds

        async def one(kind: str, seed: int) -> None:
            try:
                await self.session(kind, seed)
            finally:
                limit.release_on_behalf_of(seed)

        async with trio.open_nursery() as nursery:
            for n in range(cfg.sessions):
                if trio.current_time() >= deadline:
                    break
                with trio.move_on_at(deadline):
                    await limit.acquire_on_behalf_of(n)
                if trio.current_time() >= deadline:
                    break
                kind = self.rng.choices(kinds, weights)[0] if n >= len(kinds) else kinds[n]
                nursery.start_soon(one, kind, n)

    async def monitor(self, proc: subprocess.Popen) -> None:
        while True:
            if proc.poll() is not None:
                self.summary.find("server died", f"exit code {proc.returncode}")
                raise ServerDied()
            try:
                self.sample()
            except FileNotFoundError:
                pass
            await trio.sleep(0.1)

    async def quiesce(self) -> None:
        """Wait until the server's fd count has been stable for a second."""
        deadline = trio.current_time() + self.cfg.settle_seconds
        last, stable_since = proc_fds(self.pid), trio.current_time()
        while trio.current_time() < deadline and trio.current_time() - stable_since < 1.0:
            await trio.sleep(0.1)
            fds = proc_fds(self.pid)
            if fds != last:
                last, stable_since = fds, trio.current_time()

    async def settle(self, fds_target: int) -> int:
        deadline = trio.current_time() + self.cfg.settle_seconds
        fds = proc_fds(self.pid)
        while fds > fds_target and trio.current_time() < deadline:
            await trio.sleep(0.2)
            fds = proc_fds(self.pid)
        await trio.sleep(0.5)
        return proc_fds(self.pid)


class ServerDied(Exception):
    pass


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


async def run_async(cfg: Config, proc: subprocess.Popen, port: int, summary: Summary) -> None:
    run = Run(cfg, port, proc.pid, summary)
    async with trio.open_nursery() as outer:
        outer.start_soon(run.monitor, proc)
        # Warm-up: one control game and one session of each kind, so lazy imports and caches
        # (construct, the profanity list) are loaded before the baseline.
        await run.control_game(0)
        async with trio.open_nursery() as nursery:
            for i, kind in enumerate(KINDS):
                if kind not in ("idle", "half", "strikes"):
                    nursery.start_soon(run.session, kind, 10_000 + i)
        summary.sessions.clear()
        summary.connections = summary.bytes_sent = summary.packets_received = summary.closed_by_server = 0
        await run.quiesce()
        summary.fds_baseline, summary.rss_baseline_kb = run.sample()
        summary.fds_peak, summary.rss_peak_kb = summary.fds_baseline, summary.rss_baseline_kb
        # The storm, with control games running all along.
        async with trio.open_nursery() as nursery:
            async def storm() -> None:
                await run.spawner()
                run.stop = True

            nursery.start_soon(storm)
            nursery.start_soon(run.control_loop)
        # The server still serves a full game after it.
        await run.control_game(10_000)
        summary.fds_final = await run.settle(summary.fds_baseline)
        summary.rss_final_kb = proc_rss_kb(proc.pid)
        outer.cancel_scope.cancel()


def run(cfg: Config) -> Summary:
    """Start the server, fuzz it, stop it; the summary (``summary.ok`` says whether every check held)."""
    summary = Summary()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lgmp-net-fuzz-") as tmp:
        log_path = Path(tmp) / "server.log"
        proc, port = start_server(cfg, log_path)
        summary.port, summary.pid = port, proc.pid
        try:
            trio.run(run_async, cfg, proc, port, summary)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - report, then stop the server
            errors = [e for e in _leaves(exc) if not isinstance(e, ServerDied)]
            if errors:
                summary.find("fuzzer error", "; ".join(f"{type(e).__name__}: {e}" for e in errors))
                if cfg.verbose:
                    import traceback

                    traceback.print_exception(exc)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    summary.find("server did not stop on SIGTERM", "killed after 15 s")
                    proc.kill()
                    proc.wait()
            summary.server_exit = proc.returncode
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            if proc.stdout:
                proc.stdout.close()
            log = log_path.read_text(errors="replace")
        summary.log_errors = [line for line in log.splitlines() if BAD_LOG.search(line)]
    summary.duration = time.monotonic() - started
    if summary.server_exit != 0:
        summary.find("server exit code", f"{summary.server_exit} after SIGTERM; stdout {out[-200:]!r}")
    if summary.log_errors:
        summary.find("errors in the server log", f"{len(summary.log_errors)} lines, first: {summary.log_errors[0]}")
    if summary.control_games < 2:
        summary.find("control games", f"only {summary.control_games} control games reached FINL")
    if summary.fds_final > summary.fds_baseline:
        summary.find("fds did not return to the baseline",
                     f"baseline {summary.fds_baseline}, final {summary.fds_final} after {cfg.settle_seconds:g} s")
    if summary.rss_final_kb > summary.rss_baseline_kb + cfg.rss_tolerance_mb * 1024:
        summary.find("RSS did not return to the baseline",
                     f"baseline {summary.rss_baseline_kb} kB, final {summary.rss_final_kb} kB "
                     f"(tolerance {cfg.rss_tolerance_mb:g} MiB)")
    summary.ok = not [f for f in summary.findings if not f.known_bug]
    return summary


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Config()
    parser.add_argument("--sessions", type=int, default=d.sessions, help=f"hostile sessions at most (default {d.sessions})")
    parser.add_argument("--seconds", type=float, default=d.seconds, help=f"start no session after this (default {d.seconds:g})")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help=f"sessions at once (default {d.concurrency})")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--bots", type=int, default=d.bots, choices=SEATS, help=f"bots per control game (default {d.bots})")
    parser.add_argument("--bot-delay", type=float, default=d.bot_delay, help=f"bot think time, s (default {d.bot_delay:g})")
    parser.add_argument("--join-timeout", type=float, default=d.join_timeout, help="passed to the server, and checked")
    parser.add_argument("--packet-timeout", type=float, default=d.packet_timeout, help="passed to the server, and checked")
    parser.add_argument("--rss-tolerance-mb", type=float, default=d.rss_tolerance_mb)
    parser.add_argument("--settle-seconds", type=float, default=d.settle_seconds, help="how long fds may take to return")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for lgmp serve (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of fuzzer errors")
    args = parser.parse_args(argv)
    return Config(
        sessions=args.sessions, seconds=args.seconds, concurrency=args.concurrency, seed=args.seed, bots=args.bots,
        bot_delay=args.bot_delay, join_timeout=args.join_timeout, packet_timeout=args.packet_timeout,
        rss_tolerance_mb=args.rss_tolerance_mb, settle_seconds=args.settle_seconds, server_args=args.server_arg,
        verbose=args.verbose,
    )


def main(argv: list[str] | None = None) -> int:
    summary = run(parse_args(argv))
    print(summary.render(), flush=True)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
