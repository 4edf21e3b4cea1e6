"""``lgmp serve --cluster`` as real processes: nodes on loopback sharing room codes over a
real Valkey/Redis, results in a real PostgreSQL (tests/servers.py starts them, or the
tests skip with the reason). Leases are 3 s here, renewed every second, so failover
tests stay short.

A node prints ``LGMP server on HOST:PORT, N workers`` and one ``worker wI: pid P, relay
listener HOST:PORT, letters leased from the cluster`` line per worker; its member id
(and relay address) is its --advertise address.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.cluster.leases import fair_share
from lgmp.results.store import ResultsStore
from lgmp.wire.codec import encode
from lgmp.wire.packets import FinalResults, GameUpdate, JoinAnswer, JoinRequest, Reset, StartGame
from tests.servers import free_port, letter_owners, postgres_server, postgres_url, valkey  # noqa: F401 -- fixtures
from tests.test_relay import Clients
from tests.test_server import check_results, play_room

ROOT = Path(__file__).resolve().parent.parent
TTL = 3.0  # short, so failover tests stay short; long enough for a busy two-core machine
RENEW = TTL / 3
SERVER_LINE = re.compile(r"LGMP server on [^:\s]+:(\d+), (\d+) workers")
WORKER_LINE = re.compile(r"worker (w\d+): pid (\d+), relay listener ([\d.]+):(\d+), letters leased")
QUIET = ["--turn-timeout", "0", "--lobby-idle", "0", "--shutdown-grace", "1",
         "--packet-burst", "100000", "--packet-rate", "100000"]


@dataclass
class Node:
    """One ``lgmp serve --cluster`` process."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    member: str  # its advertise address: member id and relay address
    port: int = 0  # its public port
    ttl: float = TTL  # its --lease-ttl
    worker_pids: list[int] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL the node, parent and workers: nothing is released, leases must lapse."""
        for pid in [self.proc.pid, *self.worker_pids]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9


class Cluster:
    def __init__(self, tmp_path: Path, redis_url: str, redis_port: int):
        self.tmp_path = tmp_path
        self.redis_url, self.redis_port = redis_url, redis_port
        self.nodes: list[Node] = []

    def start(self, *options: str, db: str | None = None, prefer: str = "", ttl: float = TTL) -> Node:
        name = f"n{len(self.nodes) + 1}"
        member = f"127.0.0.1:{free_port()}"
        log_path = self.tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "lgmp.cli", "serve", "--port", "0", "--seed", str(len(self.nodes) * 1000),
                   "--cluster", self.redis_url, "--advertise", member, "--lease-ttl", str(ttl), *QUIET,
                   *(["--db", db] if db else ["--no-db"]), *(["--prefer-letters", prefer] if prefer else []), *options]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
        node = Node(name, proc, log_path, member, ttl=ttl)
        self.nodes.append(node)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        first = lines.get(timeout=20)
        match = SERVER_LINE.search(first)
        assert match, f"{first}\n{node.log()}"
        node.port = int(match.group(1))
        for _ in range(int(match.group(2))):
            node.worker_pids.append(int(WORKER_LINE.search(lines.get(timeout=20)).group(2)))
        return node

    def owners(self) -> dict[str, str | None]:
        return letter_owners(self.redis_port)

    def wait_converged(self, nodes: list[Node] | None = None, timeout: float = 10.0) -> dict[str, str | None]:
        """Until every letter is leased and each live node holds its fair share (give or take one)."""
        nodes = nodes or self.nodes
        share = fair_share(len(nodes))
        deadline = time.monotonic() + timeout
        while True:
            owners = self.owners()
            counts = [sum(1 for o in owners.values() if o == n.member) for n in nodes]
            if all(owners.values()) and all(share - 1 <= c <= share for c in counts) \
                    and set(owners.values()) == {n.member for n in nodes}:
                # Every node reads the table at its next renewal: until then a letter just
                # claimed is unknown to the others (a JOIN for it would be answered 4).
                time.sleep(max(n.ttl for n in nodes) / 3 + 0.1)
                return owners
            if time.monotonic() > deadline:
                raise AssertionError(f"no convergence in {timeout} s: {owners}")
            time.sleep(0.05)

    def close(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.kill()


@pytest.fixture
def cluster(tmp_path, valkey):
    made = Cluster(tmp_path, valkey.url, valkey.port)
    made.valkey = valkey
    yield made
    made.close()


def rooms_listing(redis_url: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "lgmp.cli", "rooms", "--cluster", redis_url, "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


async def join(port: int, room: str) -> tuple[JoinAnswer, str | None, trio.SocketStream]:
    """One raw JOIN on a fresh connection: (answer, code or None, the open stream)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(encode(JoinRequest(room)))
    data = b""
    with trio.fail_after(10):
        while len(data) < 5 or (data[4] == 1 and len(data) < 9):
            chunk = await stream.receive_some(64)
            assert chunk, f"closed after {data!r}"
            data += chunk
    answer = JoinAnswer(data[4])
    return answer, data[5:9].decode() if answer is JoinAnswer.HOST else None, stream


async def bot_game(host_port: int, player_ports: list[int], *, delay: float = 0.0) -> tuple[str, FinalResults, list[float]]:
    """A host on one node and bots on others: the code, the FINL, the times of the host's packets."""
    times: list[float] = []
    async with await LGMPClient.connect("127.0.0.1", host_port) as host:
        code = await host.host_room()
        async with trio.open_nursery() as nursery:
            for i, port in enumerate(player_ports):
                nursery.start_soon(lambda i=i, port=port: play_bot("127.0.0.1", port, code, name=f"Bot{i + 1}",
                                                                    seed=i, delay=delay))
            with trio.fail_after(10):
                while sum(1 for a in host.avatars if a) < len(player_ports):
                    await host.receive()
            await host.send(StartGame())
            with trio.fail_after(60):
                while True:
                    packet = await host.receive()
                    times.append(time.monotonic())
                    if isinstance(packet, FinalResults):
                        final = packet
                    if isinstance(packet, Reset):
                        break
    return code, final, times


# --------------------------------------------------------------------------- three nodes

async def test_games_across_three_nodes_end_with_the_exact_finl_and_land_in_one_postgresql(cluster, postgres_url):
    nodes = [cluster.start(db=postgres_url) for _ in range(3)]
    owners = cluster.wait_converged()
    codes, logs = [], []

    async def game(i: int) -> None:
        others = [n for n in nodes if n is not nodes[i]]
        clients = Clients(host_on=nodes[i], players_on=others)  # host here, players through the other two
        host_log, player_logs, *_rest, code = await play_room(clients, (1, 2, 3), seed=i)
        check_results(host_log, player_logs, (1, 2, 3))
        assert owners[code[0]] == nodes[i].member  # the code names its node
        codes.append(code)
        logs.append(host_log.final)
        for client in clients.opened:
            await client.aclose()

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(game, i)
    # Every node's games are in the one PostgreSQL database, committed before their FINL.
    with ResultsStore.open(postgres_url, create=False) as store:
        stored = {g.room: g for g in store.recent_games()}
        assert set(stored) == set(codes)
        for code, final in zip(codes, logs):
            rows = store.players(stored[code].id)
            assert tuple(r.place or 0 for r in sorted(rows, key=lambda r: r.seat)) == tuple(p for p in final.places if p)
    out = subprocess.run([sys.executable, "-m", "lgmp.cli", "results", "--db", postgres_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert all(code in out.stdout for code in codes)


async def test_codes_are_unique_across_nodes_under_1000_concurrent_hosts(cluster):
    # 1,000 connections at once keep three nodes and this process busy on two cores:
    # leases long enough that a node starved for a second or two keeps its letters.
    nodes = [cluster.start(ttl=5.0) for _ in range(3)]
    owners = cluster.wait_converged()
    answers: list[tuple[Node, JoinAnswer, str | None]] = []
    streams = []

    async def host(i: int) -> None:
        node = nodes[i % 3]
        answer, code, stream = await join(node.port, "HOST")
        answers.append((node, answer, code))
        streams.append(stream)

    async with trio.open_nursery() as nursery:
        for i in range(1000):
            nursery.start_soon(host, i)
    try:
        assert [a for _, a, _ in answers] == [JoinAnswer.HOST] * 1000
        codes = [code for _, _, code in answers]
        assert len(set(codes)) == 1000
        assert all(owners[code[0]] == node.member for node, _, code in answers)  # each node drew from its letters
    finally:
        for stream in streams:
            await stream.aclose()


async def test_lgmp_rooms_lists_exactly_the_live_rooms(cluster):
    nodes = [cluster.start() for _ in range(3)]
    cluster.wait_converged()
    clients: list[LGMPClient] = []
    expected = {}
    for node in nodes:
        for _ in range(2):
            host = await LGMPClient.connect("127.0.0.1", node.port)
            clients.append(host)
            expected[await host.host_room()] = [node.member, 0, "lobby"]
    gone = clients[1]  # its host leaves: the room closes
    code_gone = next(c for c, v in expected.items() if v[0] == nodes[0].member and c != list(expected)[0])
    await gone.aclose()
    del expected[code_gone]
    seated = list(expected)[-1]
    player = await LGMPClient.connect("127.0.0.1", nodes[0].port)  # through a relay
    clients.append(player)
    assert await player.join(seated) is JoinAnswer.PLAYER
    expected[seated][1] = 1
    try:
        deadline = trio.current_time() + 5
        while True:
            listing = await trio.to_thread.run_sync(rooms_listing, cluster.redis_url)
            seen = {r["code"]: [r["node"], r["players"], r["phase"]] for r in listing}
            if seen == expected or trio.current_time() > deadline:
                break
            await trio.sleep(RENEW / 2)
        assert seen == expected
        assert all(abs(r["created"] - time.time()) < 30 for r in listing)
        out = subprocess.run([sys.executable, "-m", "lgmp.cli", "rooms", "--cluster", cluster.redis_url], cwd=ROOT,
                             capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.stdout.splitlines()[0].split() == ["CODE", "NODE", "CREATED", "PLAYERS", "PHASE"]
        assert len(out.stdout.splitlines()) == 1 + len(expected)
    finally:
        for client in clients:
            await client.aclose()


# --------------------------------------------------------------------------- failures

async def test_a_killed_nodes_letters_are_taken_over_and_the_others_games_go_on(cluster):
    a, b, c = (cluster.start() for _ in range(3))
    before = cluster.wait_converged()
    letters_a = "".join(x for x, owner in before.items() if owner == a.member)
    host_a = await LGMPClient.connect("127.0.0.1", a.port)
    await host_a.host_room()
    game = {}

    async def play() -> None:  # between b and c, with a relayed player, while a dies
        game["result"] = await bot_game(b.port, [c.port, b.port, c.port], delay=0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(play)
        await trio.sleep(0.3)
        killed_at = time.monotonic()
        a.kill()
        while True:
            owners = await trio.to_thread.run_sync(cluster.owners)
            if all(owners[x] in (b.member, c.member) for x in letters_a):
                taken_over = time.monotonic() - killed_at
                break
            assert time.monotonic() - killed_at < TTL + RENEW + 3, owners
            await trio.sleep(0.02)
    await host_a.aclose()
    assert taken_over <= TTL + RENEW + 0.5, f"letters {letters_a} taken over after {taken_over:.2f} s"
    code, final, times = game["result"]
    assert sum(1 for p in final.places if p) == 3
    gaps = [t2 - t1 for t1, t2 in zip(times, times[1:])]
    assert max(gaps) < 1.0, f"the game stalled for {max(gaps):.2f} s"
    # The survivors now create rooms with a's old letters too, and a's room is gone from the directory.
    cluster.wait_converged([b, c])
    listing = await trio.to_thread.run_sync(rooms_listing, cluster.redis_url)
    assert a.member not in {r["node"] for r in listing}


async def test_redis_down_games_finish_new_rooms_until_the_leases_lapse_then_3_and_recovery(cluster):
    one, two = cluster.start(), cluster.start()
    cluster.wait_converged()
    open_rooms = []
    async with trio.open_nursery() as nursery:
        results = {}

        async def play() -> None:
            results["game"] = await bot_game(one.port, [two.port, two.port], delay=0.02)

        nursery.start_soon(play)
        await trio.sleep(0.2)
        cluster.valkey.stop()
        stopped_at = trio.current_time()
        # Within the leases: new rooms still open, on either node.
        answer, code, stream = await join(one.port, "HOST")
        open_rooms.append(stream)
        assert answer is JoinAnswer.HOST
        # Routing needs no Redis: a player through the other node still reaches that room.
        answer, _, stream = await join(two.port, code)
        open_rooms.append(stream)
        assert answer is JoinAnswer.PLAYER
    # The running game finished without Redis.
    _, final, _ = results["game"]
    assert sum(1 for p in final.places if p) == 2
    # Once the leases would have lapsed: JOIN HOST is answered 3, with a clear log line.
    await trio.sleep(max(0.0, stopped_at + TTL + 0.2 - trio.current_time()))
    for node in (one, two):
        answer, _, stream = await join(node.port, "HOST")
        await stream.aclose()
        assert answer is JoinAnswer.LOBBY_FULL
        assert "JOIN HOST is answered 3 until Redis is back" in node.log()
    # Existing rooms still answer through either node.
    answer, _, stream = await join(one.port, code)
    open_rooms.append(stream)
    assert answer is JoinAnswer.PLAYER
    # Redis comes back (empty): the nodes take their letters back and create rooms again.
    cluster.valkey.start()
    deadline = trio.current_time() + TTL + 3
    while True:
        answers = []
        for node in (one, two):
            answer, new_code, stream = await join(node.port, "HOST")
            answers.append(answer)
            open_rooms.append(stream)
        if answers == [JoinAnswer.HOST, JoinAnswer.HOST]:
            break
        assert trio.current_time() < deadline, answers
        await trio.sleep(RENEW / 2)
    assert "answers again" in one.log() and "answers again" in two.log()
    assert cluster.owners()[code[0]] == one.member  # it took its own letter back
    for stream in open_rooms:
        await stream.aclose()
    assert one.proc.poll() is None and two.proc.poll() is None  # nobody crashed


# --------------------------------------------------------------------------- HAProxy in front

HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"


async def test_the_documented_haproxy_front_routes_hosts_and_players_straight_to_the_owner(cluster, tmp_path):
    import shutil

    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run does it as root)")
    one = cluster.start(prefer="A-M")
    two = cluster.start(prefer="N-Z")
    owners = cluster.wait_converged()
    assert {x for x, o in owners.items() if o == one.member} == set("ABCDEFGHIJKLM")
    front = free_port()
    env = {**os.environ, "LGMP_FRONT": f"127.0.0.1:{front}", "LGMP_NODE1": one.member, "LGMP_NODE2": two.member}
    log = open(tmp_path / "haproxy.log", "w")
    proxy = subprocess.Popen([haproxy, "-db", "-f", str(HAPROXY_CONFIG)], env=env, stdout=log, stderr=log)
    try:
        from tests.servers import wait_for_port

        await trio.to_thread.run_sync(wait_for_port, front)
        # Several hosts through the front: JOIN HOST goes round-robin, each code names its node.
        codes = []
        for _ in range(4):
            answer, code, stream = await join(front, "HOST")
            assert answer is JoinAnswer.HOST
            codes.append((code, stream))
        assert {owners[code[0]] for code, _ in codes} == {one.member, two.member}
        # A connection from HAProxy carries a PROXY v2 header, so the node that gets it
        # never relays it: a player seated through the front reached the owner directly.
        for code, _ in codes:
            answer, _, stream = await join(front, code.lower())  # codes match in any case
            assert answer is JoinAnswer.PLAYER
            await stream.aclose()
        for _, stream in codes:
            await stream.aclose()
        # And a whole game through the front.
        clients = Clients(host_on=Front(front), players_on=[Front(front)])
        host_log, player_logs, *_rest, code = await play_room(clients, (1, 2), seed=5)
        check_results(host_log, player_logs, (1, 2))
        for client in clients.opened:
            await client.aclose()
        # The owner saw the player's own address (from the PROXY header), not HAProxy's port.
        owner = one if owners[code[0]] == one.member else two
        assert re.search(rf"\[{code} seat 2\] joined", owner.log())
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        log.close()


@dataclass
class Front:
    port: int
