"""``lgmp serve --workers N`` as real processes: a parent, forked workers, one port, one
results file. Clients reach a chosen worker through its relay listener (which serves
plain LGMP too) or let the kernel pick one on the public port.

What a relay does to a client (JOIN answers, leavers coming back through another
worker, hostile input cut as without a relay) is the same code in one process or
several: tests/test_relay.py tests it with in-process servers. Here are what only real
processes have: forked workers on one port, a worker killed and restarted, signals to
the parent, and one results file written by several processes.

Each test starts its own ``lgmp serve`` in a subprocess and reads what it prints:
``LGMP server on HOST:PORT, N workers`` then one ``worker wI: pid P, relay listener
HOST:PORT, letters ...`` line per worker (and one more per restart).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio

from lgmp.game.engine import GameRecord, PlayerRecord
from lgmp.results.store import ResultsStore
from lgmp.wire.packets import (
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    Reset,
    StartGame,
)
from tests.conftest import drain_updates, recv, until_closed
from tests.test_relay import Clients
from tests.test_server import AVATARS, CAREER_OF, NAMES, check_results, observe_host, play_room, play_seat, start_game

ROOT = Path(__file__).resolve().parent.parent
SERVER_LINE = re.compile(r"LGMP server on [^:\s]+:(\d+), (\d+) workers")
WORKER_LINE = re.compile(r"worker (w\d+): pid (\d+), relay listener ([\d.]+):(\d+), letters ([A-Z]+)( \(restarted\))?")
#: Nothing times out by itself during a test; scripted players at machine speed are no flood.
QUIET = ["--no-http", "--turn-timeout", "0", "--lobby-idle", "0", "--shutdown-grace", "1",
         "--packet-burst", "100000", "--packet-rate", "100000"]


@dataclasses.dataclass
class Worker:
    name: str
    pid: int
    port: int  # its relay listener: plain LGMP there reaches this worker and no other
    letters: str


class Cluster:
    """An ``lgmp serve --workers N`` process and what it printed."""

    def __init__(self, tmp_path: Path, count: int, *options: str):
        self.db = tmp_path / "results.sqlite3"
        self.log_path = tmp_path / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lgmp.cli", "serve", "--workers", str(count), "--port", "0", "--db", str(self.db),
             "--seed", "1", *QUIET, *options],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        match = SERVER_LINE.search(self.next_line())
        assert match and int(match.group(2)) == count
        self.port = int(match.group(1))
        self.workers: dict[str, Worker] = {}
        for _ in range(count):
            self._worker_line()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)

    def next_line(self, timeout: float = 15.0) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"lgmp serve printed nothing in {timeout} s; log:\n{self.log()}") from None

    def _worker_line(self, timeout: float = 15.0) -> Worker:
        line = self.next_line(timeout)
        match = WORKER_LINE.search(line)
        assert match, line
        worker = Worker(match.group(1), int(match.group(2)), int(match.group(4)), match.group(5))
        self.workers[worker.name] = worker
        return worker

    async def restarted(self, timeout: float = 15.0) -> Worker:
        return await trio.to_thread.run_sync(self._worker_line, timeout)

    def owner(self, code: str) -> Worker:
        return next(w for w in self.workers.values() if code[0] in w.letters)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            for worker in self.workers.values():  # the parent forwards signals; if it is stuck, end all
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def cluster(tmp_path):
    started: list[Cluster] = []

    def start(count: int, *options: str) -> Cluster:
        path = tmp_path / f"cluster{len(started)}"
        path.mkdir()
        started.append(Cluster(path, count, *options))
        return started[-1]

    yield start
    for c in started:
        c.close()


def stored_games(db: Path) -> list[tuple[str, tuple]]:
    """(room, ((seat, place, career, salary // 1000), ...)) of every stored game, oldest first."""
    with ResultsStore.open(db, create=False) as store:
        games = sorted(store.recent_games(100), key=lambda g: g.id)
        return [(g.room, tuple((p.seat, p.place, p.career, p.salary // 1000) for p in store.players(g.id))) for g in games]


def finl_rows(final: FinalResults) -> tuple:
    return tuple((seat, final.places[seat - 1], final.careers[seat - 1], final.salaries[seat - 1])
                 for seat in range(1, 7) if final.places[seat - 1])


# --- whole games --------------------------------------------------------------------------


async def test_two_workers_games_across_workers_end_with_the_exact_finl_in_the_one_results_file(cluster):
    c = cluster(2)
    w1, w2 = c.workers["w1"], c.workers["w2"]
    assert sorted(w1.letters + w2.letters) == [chr(65 + i) for i in range(26)]
    # Room A on w1: its players reach it through w2 and through the public port (where
    # the kernel picks a worker). Room B on w2 at the same time, its players through w1.
    public = dataclasses.replace(w1, port=c.port)
    rooms = {}

    async def room(key, host_on, players_on, seed):
        net = Clients(host_on, players_on)
        try:
            rooms[key] = await play_room(net, (1, 2, 3, 4, 5, 6), seed=seed)
        finally:
            for client in net.opened:
                await client.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(room, "a", w1, [w2, public], 1)
        nursery.start_soon(room, "b", w2, [w1], 2)
    for key, worker in (("a", w1), ("b", w2)):
        host_log, logs, host, players, code = rooms[key]
        assert code[0] in worker.letters
        check_results(host_log, logs, (1, 2, 3, 4, 5, 6))
    # Both games in the one file, each exactly as its FINL said.
    stored = dict(stored_games(c.db))
    for key in ("a", "b"):
        host_log, *_, code = rooms[key]
        assert stored[code] == finl_rows(host_log.final)
    assert c.stop() == 0


# --- a worker dies; the parent stops ---------------------------------------------------------


@pytest.mark.slow
async def test_a_killed_worker_is_restarted_its_clients_closed_and_the_others_games_go_on(cluster):
    c = cluster(3, "--leave-grace", "0.3")
    w1, w2, w3 = (c.workers[n] for n in ("w1", "w2", "w3"))
    # Room A on w1: seat 1 direct, seat 2 through w3, seat 3 through w2 (the one to die).
    a = Clients(w1, [w1, w3, w2])
    host_a, code_a = await a.host()
    players_a = {seat: await a.player(code_a, NAMES[seat], AVATARS[seat]) for seat in (1, 2, 3)}
    # Room B on w2: its host direct, a player through w1.
    b = Clients(w2, [w1])
    host_b, code_b = await b.host()
    player_b = await b.player(code_b, "Ben", 6)
    for client in (host_a, *players_a.values(), host_b, player_b):
        await drain_updates(client)
    await host_a.send(StartGame())
    for client in players_a.values():  # (the host's is for observe_host below)
        assert await recv(client) == start_game(3)
    os.kill(w2.pid, signal.SIGKILL)
    # Everyone on w2's room is closed, the relayed one too; so is room A's player relayed by w2.
    for client in (host_b, player_b, players_a[3]):
        await until_closed(client, timeout=5)
    # Room A plays on: seats 1 and 2 play, the server plays seat 3 once its grace is over.
    logs = {}

    async def play(seat):
        logs[seat] = await play_seat(players_a[seat], seat, random.Random(seat), first=start_game(3))

    async with trio.open_nursery() as nursery:
        for seat in (1, 2):
            nursery.start_soon(play, seat)
        host_log = await observe_host(host_a, (1, 2, 3))
    assert [host_log.final.careers[s - 1] for s in (1, 2)] == [CAREER_OF[1][3], CAREER_OF[2][3]]
    assert host_log.final.places[2] and logs[1].final == logs[2].final == host_log.final
    # w2 is back at the same relay address, with the same letters and none of its old rooms.
    new = await c.restarted()
    assert (new.name, new.port, new.letters) == (w2.name, w2.port, w2.letters) and new.pid != w2.pid
    again = Clients(new, [w1])
    host, code = await again.host()
    assert code[0] in w2.letters
    stale = await again.client(w1)
    await stale.send(JoinRequest(code_b))
    assert await recv(stale) == JoinResponse(JoinAnswer.ROOM_NOT_FOUND)
    for client in (*a.opened, *b.opened, *again.opened):
        await client.aclose()
    assert c.stop() == 0
    assert [room for room, _ in stored_games(c.db)] == [code_a]


@pytest.mark.slow
async def test_sigterm_mid_game_resets_everyone_exits_0_and_keeps_finished_games(cluster):
    c = cluster(2)
    w1, w2 = c.workers["w1"], c.workers["w2"]
    a = Clients(w1, [w2, w1])
    first_game = await play_room(a, (1, 2), seed=5)  # a whole game first: it must be stored
    host_a, players_a = first_game[2], first_game[3]
    b = Clients(w2, [w1])
    host_b, code_b = await b.host()
    player_b = await b.player(code_b, "Ben", 6)
    clients = [host_a, *players_a.values(), host_b, player_b]
    for client in clients:
        await drain_updates(client)
    await host_a.send(StartGame())
    await host_b.send(StartGame())
    for client in clients:
        assert isinstance(await client.wait_for(GameUpdate), GameUpdate)
    c.proc.send_signal(signal.SIGTERM)
    for client in clients:
        seen = await until_closed(client, timeout=10)
        assert seen[-1] == Reset(), seen
    assert await trio.to_thread.run_sync(lambda: c.proc.wait(timeout=20)) == 0
    assert stored_games(c.db) == [(first_game[4], finl_rows(first_game[0].final))]
    for client in (*a.opened, *b.opened):
        await client.aclose()


# --- one results file, several writers -------------------------------------------------------------


def _write_games(path: str, writer: int, count: int, barrier) -> None:
    store = ResultsStore.open(path)
    barrier.wait()
    for i in range(count):
        player = PlayerRecord(seat=1, name=f"W{writer}G{i}", avatar=1, place=1, field=5, career="Creative Director",
                              salary=132_770, tokens=(0,) * 6, landings=(0,) * 6, auto_career=False)
        store.record_game(room=f"W{writer}", seed=i, record=GameRecord(started_at=0.0, ended_at=1.0, duration=1.0, players=(player,)),
                          started=time.time() - 1, ended=time.time())
    store.close()


def test_three_processes_write_one_results_file_at_once(tmp_path):
    path = str(tmp_path / "results.sqlite3")
    ResultsStore.open(path).close()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(3)
    writers = [context.Process(target=_write_games, args=(path, w, 40, barrier)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    with ResultsStore.open(path, create=False) as store:
        games = store.recent_games(1000)
        assert len(games) == 120 and len({g.id for g in games}) == 120
        for w in range(3):
            names = sorted(p.name for g in games if g.room == f"W{w}" for p in store.players(g.id))
            assert names == sorted(f"W{w}G{i}" for i in range(40))
