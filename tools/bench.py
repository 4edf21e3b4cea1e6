"""The LGMP server benchmark: our server against a bare trio baseline, in one run.

    python -m tools.bench                 # the whole comparison, 3 interleaved repeats (~6 min)
    python -m tools.bench --repeats 1     # one of each (~2 min)
    python -m tools.bench --quick         # a smoke run of every phase (seconds)
    python -m tools.bench --profile       # then profile our server's and the baseline's storm windows

Each phase starts a fresh server process (``python -m lgmp.cli serve --no-db``, or
``python -m tools.baseline_server``), then runs ``tools.loadgen`` in a process of
its own against it over loopback, so the server has one core and the load
generator the other:

1. **storm / lgmp**: ``--storm-rooms`` rooms of a host and 6 bots playing flat out.
2. **storm / baseline-direct**: the same load generator, the same rooms, against
   ``tools.baseline_server`` (trio + codec, no rooms or rules) with one task per
   connection that reads, decodes, answers and writes straight to the peers'
   non-blocking sockets: the plain trio way, and our shell's own shape until
   one poller task came to read every connection in a room. The ratio of the
   two servers' packets per CPU-second is the headline figure (target >= 0.8).
   **storm / baseline** is the *streams* baseline, labelled as such: a writer task
   and a memory channel per connection, which our shell no longer has, so it is a
   handicapped yardstick, kept only to compare with older figures
   (``--no-streams-baseline`` skips it).
3. **paced / lgmp**: ``--paced-rooms`` rooms, each spinning ``--spin-rate`` times a
   second: SPIN -> GAME latency under a steady, realistic load (target p99 <= 20 ms
   at 1,000 rooms x 1 spin/s on an otherwise quiet machine).
4. **idle / lgmp**: ``--idle`` connections seated in lobbies, then a few rooms
   play flat out: server RSS per connection (target <= 10 KiB at 19,000) and the
   server CPU that seating them took (target <= 0.25 ms per connection, 19,000 in
   under 5 CPU-seconds). ``--idle-baseline`` seats them on the direct-write
   baseline too, for what seating costs a server that only answers JOIN and REDY.

**Repeats**: the machine is shared and its noise is larger than most changes, so
every chosen phase runs ``--repeats`` times, interleaved (storm-lgmp, storm-baseline-direct,
..., then again), each against a fresh server. The table shows each phase's
median and the spread (lowest-highest) of its packets per CPU-second; a ratio is
the median of the per-round ratios, each taken between runs of the same round.

Our server runs with flood control opened up (``--packet-rate``/``--packet-burst``
1,000,000) because bots that answer at once legitimately send faster than a
person. Server logs go to ``OUT/server-*.log``, per-phase figures to
``OUT/*.json``, latency plots to ``OUT/*.png`` (with matplotlib), the table to
stdout and progress to stderr.

Reading the table: *pkts in/s* is what the server received, *pkts out/s* what it
sent; *srv CPU* is the server process's user + system time (``/proc``), so
*pkts/CPU-s* does not depend on how busy the machine was -- but latency and
throughput do, so *other CPU* shows what else the machine ran in the window and
the run warns when it was more than 15% of a core. *loadgen CPU* is the load
generator's share of a core; the run warns when it reached 85%, where the load
generator rather than the server may have set the pace.

With ``--profile`` the storm is run once more against each server under py-spy
(``tools.bench_profile``), and the samples are split by part of the server
(kernel, trio, codec, rooms, engine, shell): each part's share of the server's
CPU per client packet, and the server's own Python per client packet above what
the baseline's own Python spends (target <= 25 us).

To measure a change: ``python -m tools.bench --server-root ../other-checkout``
(our server runs from there; the baseline and the load generator stay this
checkout's, so both checkouts are held against the same yardstick), and
``--only storm,paced`` to run some phases.

``lgmp serve --workers`` (run only when asked: ``--only workers``, about 2 minutes):

* **workers-storm-1 / -2**: the turn storm against ``--workers 1`` and ``--workers 2``,
  bots on the public port (the kernel spreads them, so about half of them land on
  a worker that does not own their room and are relayed): games/s, packets/s, p99,
  the CPU of every server process, and the ratio 2 workers / 1.
* **workers-relay-direct / -all**: two workers, every bot sent to its room's owner
  (through the owner's relay listener, which serves plain LGMP) or to the other
  worker, which relays it: server CPU per packet and the p99 the hop adds.
* **workers-idle**: ``--workers-idle`` idle connections seated on each of two
  workers at once (a load generator per worker, each with its own descriptor
  limit): RSS per connection in each worker.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .bench_profile import OWN_PYTHON
from .loadgen import raise_nofile_limit

STORM_TARGET = 0.8  # lgmp / direct-write baseline packets per CPU-second
PACED_P99_TARGET_MS = 20.0  # SPIN->GAME p99 at 1,000 rooms x 1 spin/s
SEATING_TARGET_MS = 0.25  # server CPU per seated connection
SEATING_19K_TARGET_S = 5.0  # server CPU to seat 19,000 connections (a restarted server's players)
PYTHON_ABOVE_BASELINE_TARGET_US = 25.0  # own Python per client packet above the baseline's
LOADGEN_BUSY = 0.85  # of a core: past this the load generator may be what sets the pace


@dataclass
class Phase:
    name: str
    server: str  # "lgmp", "baseline", "baseline-direct"
    title: str
    loadgen_args: list[str]
    plot: bool = True
    spectators: int = 0  # live spectator streams (HTTP on) watching ``watched`` rooms
    watched: int = 0
    optional: bool = False  # runs only when --only names it
    workers: int = 0  # lgmp serve --workers N (0: the option is not given)
    route: str = ""  # with workers: "direct" or "relayed" bots (loadgen --route); "" all to the public port
    idle_per_worker: int = 0  # with workers: a load generator per worker, each seating this many idle connections


def _log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class ServerProcess:
    """A server in a child process; ``port`` and ``pid`` once it is listening."""

    READY = re.compile(r"server on [^:\s]+:(\d+)")
    HTTP_READY = re.compile(r"HTTP on (http://\S+)")
    WORKER = re.compile(r"worker w\d+: pid (\d+), relay listener [^:\s]+:(\d+), letters ([A-Z]+)")

    def __init__(self, argv: list[str], log_path: str, *, timeout: float = 30.0, root: str | None = None,
                 http: bool = False):
        self.log = open(log_path, "w")
        self.http_url: str | None = None
        env, cwd = None, _ROOT
        self.tmp = None
        if root:
            # Another checkout's lgmp, with this checkout's tools: ``python -m`` puts
            # the working directory first on sys.path, so run in a directory that
            # holds only a link to that lgmp, with this checkout on PYTHONPATH.
            cwd = self.tmp = tempfile.mkdtemp(prefix="lgmp-bench-")
            os.symlink(os.path.join(os.path.abspath(root), "lgmp"), os.path.join(cwd, "lgmp"))
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=cwd, env=env)
        self.pid = self.proc.pid
        self.workers: list[tuple[int, int, str]] = []  # lgmp serve --workers: (pid, relay port, letters) each
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = self.READY.search(line)
            if match:
                self.port = int(match.group(1))
                count = re.search(r", (\d+) workers", line)
                for _ in range(int(count.group(1)) if count else 0):
                    worker = self.WORKER.search(self.proc.stdout.readline())
                    if worker is None:
                        break
                    self.workers.append((int(worker.group(1)), int(worker.group(2)), worker.group(3)))
                if not http:
                    return
            match = self.HTTP_READY.search(line)
            if match:
                self.http_url = match.group(1)
                return
        self.stop()
        raise RuntimeError(f"server did not start: {' '.join(argv)} (last line {line!r}; see {log_path})")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.proc.returncode


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def server_argv(kind: str, args: argparse.Namespace, *, profile_to: str | None = None, http: bool = False,
                workers: int = 0) -> list[str]:
    if kind == "lgmp":
        argv = ["lgmp.cli", "--log-level", args.server_log_level, "serve", "--no-db", "--port", "0",
                *(["--http", "127.0.0.1:0"] if http else ["--no-http"]),
                *(["--workers", str(workers)] if workers else []),
                "--seed", str(args.seed),  # the same games every run: the card mix sets the packet mix
                "--packet-rate", "1000000", "--packet-burst", "1000000",
                # every load generator connection comes from 127.0.0.1: no per-source limits
                "--max-connections-per-source", "0", "--max-unjoined-per-source", "0",
                "--max-rooms-per-source", "0", "--failed-joins-per-minute", "0",
                "--max-connections", str(max(19_500, args.idle + 2_000)),
                "--max-rooms", str(max(5_000, args.idle // 6 + args.paced_rooms + 100))]
    else:
        transport = "direct" if kind == "baseline-direct" else "streams"
        argv = ["tools.baseline_server", "--port", "0", "--transport", transport]
    if profile_to:
        return [sys.executable, "-m", "tools.bench_profile", "--profiler", args.profiler, "--out", profile_to, *argv]
    return [sys.executable, "-m", *argv]


def run_phase(phase: Phase, args: argparse.Namespace, *, profile_to: str | None = None, round_: int = 0) -> dict:
    out = args.out
    name = phase.name if args.repeats <= 1 or profile_to else f"{phase.name}-r{round_ + 1}"
    _log(f"--- {name}: {phase.title} ({phase.server} server) ---")
    http = phase.spectators > 0
    # --server-root swaps the lgmp server only: the baseline is this checkout's yardstick.
    root = args.server_root if phase.server == "lgmp" else None
    server = ServerProcess(server_argv(phase.server, args, profile_to=profile_to, http=http, workers=phase.workers),
                           os.path.join(out, f"server-{name}.log"), root=root, http=http)
    if phase.idle_per_worker:
        try:
            return run_idle_per_worker(phase, args, server)
        finally:
            server.stop()
    watchers = SpectatorStreams(server.http_url, phase.watched, phase.spectators) if http else None
    json_path = os.path.join(out, f"{name}.json")
    pids = ",".join(str(pid) for pid in [server.pid, *(w[0] for w in server.workers)])
    argv = [sys.executable, "-m", "tools.loadgen", "--port", str(server.port), "--server-pid", pids,
            "--seed", str(args.seed),
            "--label", phase.name, "--json", json_path, *phase.loadgen_args]
    if phase.route:
        argv += ["--owners", ",".join(f"{port}={letters}" for _, port, letters in server.workers), "--route", phase.route]
    if phase.plot and args.plot and round_ == 0:
        argv += ["--plot", os.path.join(out, f"{phase.name}.png")]
    if profile_to:
        argv.append("--signal-server")
    try:
        if os.path.exists(json_path):
            os.remove(json_path)
        # The load generator's summary goes to stderr with its progress: stdout is the table.
        done = subprocess.run(argv, cwd=_ROOT, stdout=sys.stderr, stderr=sys.stderr, timeout=args.phase_timeout)
    finally:
        if watchers is not None:
            watchers.stop()
        server.stop()
    if done.returncode != 0 or not os.path.exists(json_path):
        raise RuntimeError(f"load generator failed in phase {phase.name} (exit {done.returncode})")
    with open(json_path) as f:
        result = json.load(f)
    result["server"] = phase.server
    result["title"] = phase.title
    result["name"] = phase.name
    result["round"] = round_
    if watchers is not None:
        result["spectators"] = watchers.figures()
    return result


class SpectatorStreams:
    """``count`` live spectator streams (``GET /rooms/CODE/events``) spread over the first
    ``rooms`` rooms the server lists, read as fast as they come in a thread of this
    (otherwise idle) process, until ``stop``."""

    def __init__(self, url: str, rooms: int, count: int, *, timeout: float = 20.0):
        import threading

        self.url, self.rooms, self.count, self.timeout = url, rooms, count, timeout
        self.bytes = self.events = self.opened = self.refused = 0
        self.codes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import selectors
        import socket
        import urllib.request
        from urllib.parse import urlsplit

        deadline = time.monotonic() + self.timeout
        while len(self.codes) < self.rooms and time.monotonic() < deadline and not self._stop.is_set():
            with urllib.request.urlopen(self.url + "/api/rooms", timeout=5) as response:
                self.codes = [r["code"] for r in json.load(response)["rooms"] if r["phase"] == "game"][: self.rooms]
            time.sleep(0.05)
        if not self.codes:
            _log("spectators: no room to watch")
            return
        where = urlsplit(self.url)
        selector = selectors.DefaultSelector()
        for i in range(self.count):
            sock = socket.create_connection((where.hostname, where.port))
            code = self.codes[i % len(self.codes)]
            sock.sendall(f"GET /rooms/{code}/events HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        self.opened = self.count
        _log(f"spectators: {self.count} streams on rooms {', '.join(self.codes)}")
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(262144)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                if b" 503 " in data[:20]:
                    self.refused += 1
                self.bytes += len(data)
                self.events += data.count(b"event: room")
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def figures(self) -> dict:
        return {"streams": self.opened, "rooms": len(self.codes), "updates": self.events, "bytes": self.bytes,
                "refused": self.refused}


def run_idle_per_worker(phase: Phase, args: argparse.Namespace, server: ServerProcess) -> dict:
    """A load generator per worker at once, each seating idle connections on its worker
    (through its relay listener, so each worker gets exactly its share) and reading that
    worker's RSS: the figures of each, under ``per_worker``."""
    runs = []
    for i, (pid, port, _) in enumerate(server.workers):
        json_path = os.path.join(args.out, f"{phase.name}-w{i + 1}.json")
        if os.path.exists(json_path):
            os.remove(json_path)
        argv = [sys.executable, "-m", "tools.loadgen", "--port", str(port), "--server-pid", str(pid),
                "--seed", str(args.seed + i), "--label", f"{phase.name}-w{i + 1}", "--json", json_path,
                "--idle", str(phase.idle_per_worker), "--rooms", "0", "--duration", "0.5", "--warmup", "0"]
        runs.append((json_path, subprocess.Popen(argv, cwd=_ROOT, stdout=sys.stderr, stderr=sys.stderr)))
    results = []
    for json_path, proc in runs:
        if proc.wait(timeout=args.phase_timeout) != 0 or not os.path.exists(json_path):
            raise RuntimeError(f"load generator failed in phase {phase.name} (exit {proc.returncode})")
        with open(json_path) as f:
            results.append(json.load(f))
    combined = dict(results[0])
    for key in ("connections", "packets_in", "packets_out", "server_cpu_s", "server_peak_rss_kb", "loadgen_cpu_s",
                "closed_by_server"):
        combined[key] = sum(r.get(key) or 0 for r in results)
    combined["errors"] = {k: v for r in results for k, v in r["errors"].items()}
    # Each load generator subtracts only its own CPU from the machine's: the smaller is closer.
    combined["other_cpu_s"] = min(r["other_cpu_s"] for r in results)
    combined["per_worker"] = [r["idle"] for r in results]
    combined["server"], combined["title"], combined["name"] = phase.server, phase.title, phase.name
    return combined


def phases(args: argparse.Namespace) -> list[Phase]:
    common = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    storm = ["--rooms", str(args.storm_rooms), *common]
    title = f"turn storm, {args.storm_rooms} rooms flat out"
    out = [
        Phase("storm-lgmp", "lgmp", title, storm),
        Phase("storm-baseline-direct", "baseline-direct", title, storm, plot=False),
    ]
    if args.streams_baseline:
        out.append(Phase("storm-baseline", "baseline", title + " (streams baseline: not the yardstick)", storm,
                         plot=False))
    if args.paced_rooms:
        out.append(Phase("paced-lgmp", "lgmp", f"paced, {args.paced_rooms} rooms x {args.spin_rate:g} spin/s",
                         ["--rooms", str(args.paced_rooms), "--spin-rate", str(args.spin_rate),
                          "--duration", str(args.paced_duration), "--warmup", str(args.paced_warmup)]))
    watched = min(args.watched_rooms, args.storm_rooms)  # no more rooms than are playing
    out.append(Phase("storm-http", "lgmp", f"{title}, HTTP on, {args.spectators} spectators on {watched} rooms",
                     storm, spectators=args.spectators, watched=watched, optional=True))
    if args.idle:
        idle = ["--idle", str(args.idle), "--rooms", str(args.idle_rooms),
                "--duration", str(args.idle_duration), "--warmup", str(args.warmup)]
        out.append(Phase("idle-lgmp", "lgmp", f"{args.idle} idle + {args.idle_rooms} rooms flat out", idle))
        if args.idle_baseline:
            out.append(Phase("idle-baseline-direct", "baseline-direct", f"{args.idle} idle + {args.idle_rooms} rooms flat out",
                             idle, plot=False))
    # lgmp serve --workers: only when asked for (--only workers).
    out += [
        Phase("workers-storm-1", "lgmp", f"{title}, --workers 1", storm, workers=1, optional=True),
        Phase("workers-storm-2", "lgmp", f"{title}, --workers 2", storm, workers=2, optional=True),
        Phase("workers-relay-direct", "lgmp", f"{title}, --workers 2, every bot on its owner", storm, workers=2,
              route="direct", optional=True),
        Phase("workers-relay-all", "lgmp", f"{title}, --workers 2, every bot relayed", storm, workers=2,
              route="relayed", optional=True),
    ]
    if args.workers_idle:
        out.append(Phase("workers-idle", "lgmp", f"--workers 2, {args.workers_idle} idle on each", [], plot=False,
                         workers=2, idle_per_worker=args.workers_idle, optional=True))
    return out


# --- the table -----------------------------------------------------------------------------


def _num(value, fmt: str = ",.0f", dash: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or (dash and not value):
        return "-"
    return format(value, fmt)


COLUMNS = [
    ("workload", "<", lambda r: r["title"]),
    ("server", "<", lambda r: r["server"]),
    ("runs", ">", lambda r: _num(r.get("repeats", 1))),
    ("conns", ">", lambda r: _num(r["connections"])),
    ("games/s", ">", lambda r: _num(r["games_per_s"], ".1f", dash=r["server"] != "lgmp")),
    ("pkts in/s", ">", lambda r: _num(r["packets_in_per_s"])),
    ("pkts out/s", ">", lambda r: _num(r["packets_out_per_s"])),
    ("p50 ms", ">", lambda r: _num(r["latency"]["p50_ms"], ".2f")),
    ("p99 ms", ">", lambda r: _num(r["latency"]["p99_ms"], ".2f")),
    ("max ms", ">", lambda r: _num(r["latency"]["max_ms"], ".2f")),
    ("srv CPU s", ">", lambda r: _num(r.get("server_cpu_s"), ".2f")),
    ("srv CPU", ">", lambda r: _num(r.get("server_cpu_share"), ".0%")),
    ("pkts/CPU-s", ">", lambda r: _num(r.get("packets_per_cpu_s"))),
    ("spread", ">", lambda r: _spread(r.get("packets_per_cpu_s_runs", []))),
    ("peak RSS MiB", ">", lambda r: _num(r.get("server_peak_rss_kb", 0) / 1024, ".1f")),
    ("loadgen CPU", ">", lambda r: _num(r["loadgen_cpu_s"] / r["window_s"], ".0%")),
    ("other CPU", ">", lambda r: _num(r["other_cpu_s"] / r["window_s"], ".0%")),
]


def _spread(values: list[float], fmt: str = ",.0f") -> str:
    """``lowest-highest`` of the repeats (a dash for a single run)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if len(values) < 2:
        return "-"
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def table(results: list[dict]) -> str:
    rows = [[c[0] for c in COLUMNS]] + [[c[2](r) for c in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def fmt(row: list[str]) -> str:
        return "  ".join(f"{cell:{COLUMNS[i][1]}{widths[i]}}" for i, cell in enumerate(row)).rstrip()

    lines = [fmt(rows[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in rows[1:]]
    return "\n".join(lines)


def _cpu_per_packet_us(r: dict) -> float:
    return r["server_cpu_s"] / max(r["packets_in"] + r["packets_out"], 1) * 1e6


def workers_verdicts(results: dict[str, dict]) -> list[str]:
    """The lines for lgmp serve --workers: scaling, the relay's cost, idle memory."""
    lines = []
    one, two = results.get("workers-storm-1"), results.get("workers-storm-2")
    for r in (one, two):
        if r:
            lines.append(f"{r['name']}: {r['games_per_s']:.1f} games/s, {r['packets_in_per_s'] + r['packets_out_per_s']:,.0f} "
                         f"packets/s, SPIN->GAME p99 {r['latency']['p99_ms']:.2f} ms, server CPU {r['server_cpu_s']:.2f} s "
                         f"over {r['window_s']:.1f} s ({r['server_cpu_share']:.0%} of a core, every process; "
                         f"{_cpu_per_packet_us(r):.1f} us per packet), loadgen {r['loadgen_cpu_s'] / r['window_s']:.0%} of a core")
    if one and two:
        lines.append(f"workers 2 / 1: games/s x{two['games_per_s'] / max(one['games_per_s'], 1e-9):.2f}, "
                     f"packets/s x{two['packets_in_per_s'] / max(one['packets_in_per_s'], 1e-9):.2f}, "
                     f"server CPU x{two['server_cpu_s'] / max(one['server_cpu_s'], 1e-9):.2f}, "
                     f"p99 {one['latency']['p99_ms']:.2f} -> {two['latency']['p99_ms']:.2f} ms "
                     f"({os.cpu_count()} CPUs shared with the load generator)")
    direct, relayed = results.get("workers-relay-direct"), results.get("workers-relay-all")
    if direct and relayed:
        d, r = _cpu_per_packet_us(direct), _cpu_per_packet_us(relayed)
        lines.append(f"relay cost (2 workers): server CPU per packet {d:.1f} us every bot direct, {r:.1f} us every bot "
                     f"relayed (x{r / d:.2f}); games/s {direct['games_per_s']:.1f} -> {relayed['games_per_s']:.1f}; "
                     f"p99 SPIN->GAME {direct['latency']['p99_ms']:.2f} -> {relayed['latency']['p99_ms']:.2f} ms "
                     f"(+{relayed['latency']['p99_ms'] - direct['latency']['p99_ms']:.2f} ms for the hop), "
                     f"p50 +{relayed['latency']['p50_ms'] - direct['latency']['p50_ms']:.2f} ms")
    idle = results.get("workers-idle")
    if idle and idle.get("per_worker"):
        parts = [f"w{i + 1}: {w['connections']:,} connections, RSS {w.get('rss_before_kb', 0) / 1024:.1f} -> "
                 f"{w.get('rss_after_kb', 0) / 1024:.1f} MiB = {w.get('rss_per_conn_kb', math.nan):.2f} KiB per connection"
                 for i, w in enumerate(idle["per_worker"])]
        total = sum(w["connections"] for w in idle["per_worker"])
        lines.append(f"idle on 2 workers at once ({total:,} connections): " + "; ".join(parts))
    return lines


def _median(values: list) -> float:
    numbers = [v for v in values if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(numbers) if numbers else math.nan


def summarize(runs: list[dict]) -> dict:
    """One phase's repeats as one result: the median of every figure (problems are
    summed, so one bad run shows), the runs' packets per CPU-second kept for the spread."""
    out: dict = {}
    for key, value in runs[0].items():
        if key in ("closed_by_server",):
            out[key] = sum(r.get(key, 0) for r in runs)
        elif key == "errors":
            merged: dict[str, int] = {}
            for r in runs:
                for what, count in r.get(key, {}).items():
                    merged[what] = merged.get(what, 0) + count
            out[key] = merged
        elif isinstance(value, bool) or not isinstance(value, (int, float, dict)):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = summarize([r.get(key, {}) for r in runs])
        else:
            out[key] = _median([r.get(key) for r in runs])
    out["repeats"] = len(runs)
    out["packets_per_cpu_s_runs"] = [r.get("packets_per_cpu_s") for r in runs]
    return out


def paired_ratios(ours: list[dict], theirs: list[dict], key: str = "packets_per_cpu_s") -> list[float]:
    """``ours / theirs`` for each round both ran in (the runs of one round are neighbours in time)."""
    by_round = {r["round"]: r for r in theirs if r.get(key)}
    return [r[key] / by_round[r["round"]][key] for r in ours if r.get(key) and r["round"] in by_round]


def _per_client_packet_us(r: dict) -> float:
    return r["server_cpu_s"] / max(r["packets_in"], 1) * 1e6 if r.get("server_cpu_s") else math.nan


def verdicts(results: dict[str, dict], args: argparse.Namespace, runs: dict[str, list[dict]] | None = None) -> list[str]:
    runs = runs or {name: [r] for name, r in results.items()}
    lines = []
    ours, direct, streams = results.get("storm-lgmp"), results.get("storm-baseline-direct"), results.get("storm-baseline")
    if ours and direct:
        ratios = paired_ratios(runs["storm-lgmp"], runs["storm-baseline-direct"])
        if ratios:
            ratio = statistics.median(ratios)
            lines.append(
                f"turn storm: lgmp / baseline packets per CPU-second = {ratio:.2f} "
                f"(median of {len(ratios)} interleaved rounds, spread {_spread(ratios, '.2f')}; against the direct-write "
                f"baseline, baseline-direct: {ours['packets_per_cpu_s']:,.0f} / {direct['packets_per_cpu_s']:,.0f} median; "
                f"target >= {STORM_TARGET}: {'met' if ratio >= STORM_TARGET else 'NOT met'})")
        lines.append(f"  server CPU per client packet: lgmp {_per_client_packet_us(ours):.1f} us, "
                     f"baseline-direct {_per_client_packet_us(direct):.1f} us (medians)")
    if ours and streams:
        ratios = paired_ratios(runs["storm-lgmp"], runs["storm-baseline"])
        if ratios:
            lines.append(f"  (lgmp / streams baseline = {statistics.median(ratios):.2f}: that baseline has a writer task "
                         f"and a channel per connection, which lgmp does not: a handicapped yardstick, not the target's)")
    if ours and (direct or streams):
        base = direct or streams
        lines.append(f"  (mix: lgmp's bots also answer cards, so it receives more packets per packet sent: "
                     f"out/in {ours['packets_out'] / max(ours['packets_in'], 1):.1f} vs the baselines' "
                     f"{base['packets_out'] / max(base['packets_in'], 1):.1f}; a received packet costs more than a sent one)")
    watched = results.get("storm-http")
    if watched and watched.get("packets_per_cpu_s"):
        sp = watched.get("spectators", {})
        # (medians of several rounds may be halves: counts are shown whole)
        line = (f"observation: turn storm with HTTP on and {sp.get('streams', 0):.0f} spectators on {sp.get('rooms', 0):.0f} rooms "
                f"({sp.get('updates', 0):,.0f} updates, {sp.get('bytes', 0) / 1e6:.1f} MB received): "
                f"{watched['packets_per_cpu_s']:,.0f} pkts/CPU-s, SPIN->GAME p99 {watched['latency']['p99_ms']:.2f} ms")
        if ours and ours.get("packets_per_cpu_s"):
            line += (f"; HTTP off: {ours['packets_per_cpu_s']:,.0f} pkts/CPU-s, p99 {ours['latency']['p99_ms']:.2f} ms; "
                     f"cost of observation {1 - watched['packets_per_cpu_s'] / ours['packets_per_cpu_s']:.1%} of packets per CPU-second")
        lines.append(line)
    paced = results.get("paced-lgmp")
    if paced:
        p99 = paced["latency"]["p99_ms"]
        p99s = [r["latency"]["p99_ms"] for r in runs["paced-lgmp"]]
        at_size = paced["rooms"] >= 1000 and paced["spin_rate"] <= 1
        met = p99 <= PACED_P99_TARGET_MS and at_size
        lines.append(f"paced: {paced['rooms']:,.0f} rooms x {paced['spin_rate']:g} spin/s: SPIN->GAME p99 {p99:.2f} ms "
                     f"(spread {_spread(p99s, '.2f')}), max {paced['latency']['max_ms']:.2f} ms over "
                     f"{paced['latency']['count']:.0f} spins (target p99 <= {PACED_P99_TARGET_MS:g} ms at 1,000 rooms x "
                     f"1 spin/s: {'met' if met else 'NOT met' if at_size else 'not tested at that size'})")
    idle = results.get("idle-lgmp")
    if idle and "idle" in idle:
        i = idle["idle"]
        per = i.get("rss_per_conn_kb", math.nan)
        met = per <= 10 and i["connections"] >= 19_000
        lines.append(f"idle: {i['connections']:,.0f} connections seated in {i['rooms']:,.0f} lobbies in {i['setup_s']:.1f} s; "
                     f"server RSS {i.get('rss_before_kb', 0) / 1024:.1f} -> {i.get('rss_after_kb', 0) / 1024:.1f} MiB = "
                     f"{per:.2f} KiB per connection ({i.get('rss_total_per_conn_kb', math.nan):.2f} KiB counting the whole process); "
                     f"peak RSS {idle['server_peak_rss_kb'] / 1024:.1f} MiB "
                     f"(target <= 10 KiB at 19,000: {'met' if met else 'NOT met' if i['connections'] >= 19_000 else 'not tested at that size'})")
        cpu = i.get("setup_server_cpu_s")
        if cpu:
            per_ms = cpu / i["connections"] * 1e3
            at_19k = per_ms * 19_000 / 1e3
            cpus = [r["idle"]["setup_server_cpu_s"] / r["idle"]["connections"] * 1e3 for r in runs["idle-lgmp"]]
            met = per_ms <= SEATING_TARGET_MS and at_19k < SEATING_19K_TARGET_S
            lines.append(f"seating: {cpu:.2f} CPU-s of the server for {i['connections']:,.0f} connections = {per_ms:.3f} ms each "
                         f"(spread {_spread(cpus, '.3f')}); 19,000 at that rate: {at_19k:.1f} CPU-s (target <= "
                         f"{SEATING_TARGET_MS} ms and < {SEATING_19K_TARGET_S:g} CPU-s for 19,000: {'met' if met else 'NOT met'})")
            bare = results.get("idle-baseline-direct", {}).get("idle", {})
            if bare.get("setup_server_cpu_s"):
                bare_ms = bare["setup_server_cpu_s"] / bare["connections"] * 1e3
                lines.append(f"  (the direct-write baseline seated the same connections for {bare_ms:.3f} ms each: "
                             f"lgmp / baseline = {per_ms / bare_ms:.2f})")
    lines += workers_verdicts(results)
    busy = [f"{r.get('label', name)} (round {r.get('round', 0) + 1}) {r['other_cpu_s'] / r['window_s']:.0%}"
            for name, phase_runs in runs.items() for r in phase_runs
            if r.get("window_s") and r.get("other_cpu_s", 0) / r["window_s"] > 0.15]
    if busy:
        lines.append("WARNING: other work used the CPUs during " + ", ".join(busy) +
                     " of a core: throughput and latency figures are not comparable; rerun on a quiet machine")
    pacing = [f"{r.get('label', name)} (round {r.get('round', 0) + 1}) {r['loadgen_cpu_s'] / r['window_s']:.0%}"
              for name, phase_runs in runs.items() for r in phase_runs
              if r.get("window_s") and r.get("loadgen_cpu_s", 0) / r["window_s"] >= LOADGEN_BUSY]
    if pacing:
        lines.append("WARNING: the load generator used " + ", ".join(pacing) + " of a core: it, not the server, "
                     "may have set the pace there (packets per CPU-second stay the server's own; throughput and "
                     "latency may be the load generator's)")
    problems = [f"{name}: {r['closed_by_server']} connections closed by the server, errors {r['errors']}"
                for name, r in results.items() if r["closed_by_server"] or r["errors"]]
    return lines + problems


def profile_breakdown(profiles: dict[str, tuple[str, dict]]) -> list[str]:
    """Server CPU per client packet by part of the server, for each profiled storm
    (``profiles``: phase name -> (report prefix, its loadgen result)), and the own
    Python above the baseline's."""
    columns, own = [], {}
    for name in ("storm-lgmp", "storm-baseline-direct"):
        if name not in profiles:
            continue
        prefix, result = profiles[name]
        try:
            with open(prefix + "-groups.json") as f:
                shares = json.load(f)["shares"]
        except OSError:
            continue
        per_packet = _per_client_packet_us(result)
        columns.append((result["server"], shares, per_packet))
        own[name] = sum(share for group, share in shares.items() if group in OWN_PYTHON) * per_packet
    if not columns:
        return []
    groups = sorted({g for _, shares, _ in columns for g in shares}, key=lambda g: -columns[0][1].get(g, 0))
    width = max(len(g) for g in groups + ["part of the server"])
    lines = ["profile of the storm (measurement window, py-spy --native): server CPU per client packet by part",
             f"  {'part of the server':<{width}}" + "".join(f"  {server + ' us':>22}" for server, _, _ in columns)]
    for group in groups:
        cells = "".join(f"  {shares.get(group, 0) * per:>14.1f} ({shares.get(group, 0):>4.0%})" for _, shares, per in columns)
        lines.append(f"  {group:<{width}}{cells}")
    lines.append(f"  {'all':<{width}}" + "".join(f"  {per:>14.1f} (100%)" for _, _, per in columns))
    if "storm-lgmp" in own and "storm-baseline-direct" in own:
        above = own["storm-lgmp"] - own["storm-baseline-direct"]
        lines.append(f"server Python per client packet: lgmp {own['storm-lgmp']:.1f} us, baseline {own['storm-baseline-direct']:.1f} us: "
                     f"{above:.1f} us above the baseline (target <= {PYTHON_ABOVE_BASELINE_TARGET_US:g} us: "
                     f"{'met' if above <= PYTHON_ABOVE_BASELINE_TARGET_US else 'NOT met'})")
    return lines


def _top_of(prefix: str, count: int = 12) -> str:
    """The GC figures and the first ``count`` lines of a flat profile, indented."""
    lines = []
    try:
        with open(prefix + "-gc.txt") as f:
            lines += ["  " + line.rstrip() for line in f]
        with open(prefix + "-flat.txt") as f:
            flat = [line.rstrip() for line in f if line.strip()]
        body = [line for line in flat if re.match(r"\s*\d+(\.\d+)?%", line)]
        lines += ["  " + line for line in body[:count]]
    except OSError as exc:
        lines.append(f"  (no profile: {exc})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: every phase, tiny and short")
    p.add_argument("--out", default="bench-out", help="directory for JSON, plots and server logs (default bench-out)")
    p.add_argument("--storm-rooms", type=int, default=32, help="rooms in the turn storm (default 32)")
    p.add_argument("--duration", type=float, default=10.0, help="storm measurement window, s (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="play before each storm/idle window, s (default 1)")
    p.add_argument("--paced-rooms", type=int, default=1000, help="0 skips the paced phase (default 1000)")
    p.add_argument("--spin-rate", type=float, default=1.0, help="spins per second per paced room (default 1)")
    p.add_argument("--paced-duration", type=float, default=10.0, help="paced measurement window, s (default 10)")
    p.add_argument("--paced-warmup", type=float, default=2.0, help="play before the paced window, s (default 2)")
    p.add_argument("--idle", type=int, default=19_000, help="idle connections; 0 skips the idle phase (default 19000)")
    p.add_argument("--idle-rooms", type=int, default=10, help="rooms playing flat out beside the idle ones (default 10)")
    p.add_argument("--idle-duration", type=float, default=5.0, help="idle-phase measurement window, s (default 5)")
    p.add_argument("--no-streams-baseline", dest="streams_baseline", action="store_false",
                   help="skip the streams baseline (a writer task and a channel per connection: not the yardstick)")
    p.add_argument("--idle-baseline", action="store_true",
                   help="also seat the idle connections on the direct-write baseline: what seating costs a bare trio server")
    p.add_argument("--repeats", type=int, default=3,
                   help="run every chosen phase this many times, interleaved; medians and spreads are reported (default 3)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="no PNG plots")
    p.add_argument("--profile", action="store_true",
                   help="then run the storm (and paced) phases once more with the servers profiled during the "
                        "measurement window only (OUT/profile-*; py-spy when installed, else pyinstrument)")
    p.add_argument("--profiler", choices=["auto", "py-spy", "pyinstrument", "none"], default="auto",
                   help="with --profile: which profiler (auto: py-spy when installed; none: GC figures only)")
    p.add_argument("--server-log-level", default="warning", choices=["debug", "info", "warning", "error"],
                   help="our server's --log-level (default warning; info logs every join and game)")
    p.add_argument("--seed", type=int, default=1, help="our server's --seed and the load generator's (default 1)")
    p.add_argument("--phase-timeout", type=float, default=300.0, help="give up on a phase after this long, s")
    p.add_argument("--only", default="", metavar="PHASES",
                   help="run only these phases (comma-separated name prefixes: storm-lgmp, storm-baseline, paced, idle; "
                        "storm-http, the turn storm with HTTP on and spectators watching, runs only when named; "
                        "so do the lgmp serve --workers phases: workers for all of them)")
    p.add_argument("--workers-idle", type=int, default=19_000,
                   help="workers-idle: idle connections on each of two workers; 0 skips it (default 19000)")
    p.add_argument("--spectators", type=int, default=100, help="storm-http: live spectator streams (default 100)")
    p.add_argument("--watched-rooms", type=int, default=10, help="storm-http: rooms they watch (default 10)")
    p.add_argument("--server-root", default=None, metavar="DIR",
                   help="run our server from another checkout (its lgmp package), e.g. to measure a patch; "
                        "the baseline and the load generator stay this checkout's")
    return p


QUICK = {"storm_rooms": 4, "duration": 1.5, "warmup": 0.3, "paced_rooms": 20, "spin_rate": 5.0,
         "paced_duration": 1.5, "paced_warmup": 0.3, "idle": 200, "idle_rooms": 2, "idle_duration": 1.0,
         "workers_idle": 200, "repeats": 1}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        tokens = sys.argv[1:] if argv is None else argv
        given = {a.dest for a in parser._actions
                 if any(t == opt or t.startswith(opt + "=") for t in tokens for opt in a.option_strings)}
        for key, value in QUICK.items():
            if key not in given:
                setattr(args, key, value)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    # Children inherit the soft limit: the server and the load generator both need
    # one descriptor per connection.
    soft = raise_nofile_limit(max(args.idle, args.workers_idle) + args.paced_rooms * 7 + 2_000)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    _log(f"open files: soft limit {soft}, hard limit {hard}; {os.cpu_count()} CPUs")
    started = time.perf_counter()
    only = [o for o in args.only.split(",") if o]
    chosen = [p for p in phases(args)
              if (not p.optional and (not only or any(p.name.startswith(o) for o in only)))
              or (p.optional and any(o.startswith(p.name) or (p.workers and p.name.startswith(o)) for o in only))]
    runs: dict[str, list[dict]] = {p.name: [] for p in chosen}
    failed = []
    for round_ in range(max(1, args.repeats)):
        for phase in chosen:  # interleaved: each round runs every phase once
            try:
                runs[phase.name].append(run_phase(phase, args, round_=round_))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                _log(f"phase {phase.name} (round {round_ + 1}) failed: {exc}")
                failed.append(f"{phase.name} (round {round_ + 1}): {exc}")
    results = {name: summarize(phase_runs) for name, phase_runs in runs.items() if phase_runs}
    profiles: dict[str, tuple[str, dict]] = {}
    if args.profile:
        for phase in chosen:
            if phase.name.startswith("idle") or phase.server == "baseline" or phase.workers or phase.spectators:
                continue
            prefix = os.path.join(args.out, f"profile-{phase.name}")
            try:
                profiled = run_phase(Phase(f"profile-{phase.name}", phase.server, phase.title + " (profiled)",
                                           phase.loadgen_args, plot=False), args, profile_to=prefix)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                failed.append(f"profile-{phase.name}: {exc}")
                continue
            profiles[phase.name] = (prefix, profiled)
            _log(f"profile of {phase.name} written to {prefix}-flat.txt, {prefix}-groups.json, {prefix}-gc.txt")
    elapsed = time.perf_counter() - started
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump({"elapsed_s": elapsed, "repeats": args.repeats, "results": results, "runs": runs,
                   "profiles": {name: r for name, (_, r) in profiles.items()}}, f, indent=1)

    print(f"LGMP benchmark: {os.cpu_count()} CPUs; each server and its load generator in separate processes over loopback; "
          f"{args.repeats} interleaved round(s), medians shown"
          + (f"; our server runs from {args.server_root}" if args.server_root else ""))
    print()
    print(table(list(results.values())) if results else "(no phase completed)")
    print()
    for line in verdicts(results, args, runs):
        print(line)
    plots = [r["plot"] for r in results.values() if r.get("plot")]
    if plots:
        print("plots: " + ", ".join(plots))
    for line in profile_breakdown(profiles):
        print(line)
    for name, (prefix, profiled) in profiles.items():
        if profiled["server"] != "lgmp":
            continue
        print(f"profile of {name} (window only; {profiled['packets_per_cpu_s']:,.0f} pkts/CPU-s while profiled): "
              f"{prefix}-flat.txt, {prefix}-gc.txt")
        print(_top_of(prefix))
    for failure in failed:
        print(f"FAILED {failure}")
    print(f"total {elapsed:.0f} s; figures in {os.path.join(args.out, 'bench.json')}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
