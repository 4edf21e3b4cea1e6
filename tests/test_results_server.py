"""Results through the real server: one finished game lands as exactly one stored game,
and a server killed right after FINL has already committed it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import trio

from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.wire.packets import FinalResults, Reset, StartGame
from lgmp.game.rules import career_salary, find_career
from lgmp.server.shell import LGMPServer
from lgmp.results.store import ResultsStore


async def _host_a_game(port: int, bots: int) -> tuple[str, FinalResults, tuple[int, ...]]:
    """Host a room with ``bots`` bots; the code, the FINL and the avatars by seat."""
    async with await LGMPClient.connect("127.0.0.1", port) as host:
        code = await host.host_room()
        async with trio.open_nursery() as nursery:
            for i in range(bots):
                nursery.start_soon(lambda i=i: play_bot("127.0.0.1", port, code, name=f"Bot{i + 1}", seed=i))
                await trio.sleep(0.02)
            while sum(1 for a in host.avatars if a) < bots:
                await host.receive()
            avatars = host.avatars
            await host.send(StartGame())
            final = await host.wait_for(FinalResults)
            await host.wait_for(Reset)
    return code, final, avatars


def _check_rows(store: ResultsStore, code: str, final: FinalResults, avatars: tuple[int, ...], players: int) -> None:
    (summary,) = store.recent_games()
    assert summary.room == code and summary.player_count == players
    assert summary.duration >= 0 and summary.ended >= summary.started
    rows = store.players(summary.id)
    assert [r.seat for r in rows] == [s for s in range(1, 7) if final.places[s - 1]]
    for row in rows:
        i = row.seat - 1
        assert row.place == final.places[i]
        assert row.career == final.careers[i]
        assert row.salary == career_salary(final.careers[i], final.salaries[i])  # what FINL stands for
        assert int(row.avatar) == avatars[i]
        assert row.name == f"Bot{row.seat}"
        career = find_career(row.field, row.career)
        assert career is not None and career.salary == row.salary
        assert sum(row.landings) >= 1 and row.landings[5] <= 1  # at most one Finish landing (a card move may finish instead)
        assert not row.auto_career


async def test_a_game_through_the_server_lands_exactly_once(nursery, tmp_path):
    store = ResultsStore.open(tmp_path / "results.sqlite3")

    def record(finished, started, ended):
        store.record_game(room=finished.room, seed=finished.seed, record=finished.record, started=started, ended=ended)

    server = LGMPServer(seed=3, on_game_finished=record)
    port = await nursery.start(server.serve, "127.0.0.1", 0)
    code, final, avatars = await _host_a_game(port, 3)
    # FINL is held until the game is committed, so it is already there.
    assert store.game_count() == 1
    _check_rows(store, code, final, avatars, 3)
    store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_right_after_finl_keeps_the_game(tmp_path):
    db = tmp_path / "results.sqlite3"
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "serve", "--no-http", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert "LGMP server on" in proc.stdout.readline()
        code, final, avatars = trio.run(_host_a_game, port, 2)
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush: only what was committed survives
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = ResultsStore.open(db, create=False)
    assert store.game_count() == 1
    _check_rows(store, code, final, avatars, 2)
    store.close()
