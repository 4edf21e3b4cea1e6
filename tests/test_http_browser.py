"""The spectator page in a real browser: headless Chromium (Debian's ``chromium``,
driven by Playwright) watches a room while bots play; its board must show the pieces
where the players are, and its standings the FINL's.

Skipped, with the reason, only where there is no Chromium binary (``.ci/run``
installs Debian's package) or no Playwright.
"""

from __future__ import annotations

import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import trio

from lgmp.clients.bot import BotBrain
from lgmp.clients.client import LGMPClient
from lgmp.wire.packets import FinalResults, GameUpdate, JoinAnswer, ReadyAnswer, Reset, Spin, StartGame

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SPINS_BEFORE_LOOKING = 8
TIMEOUT = 20.0

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")


class Game:
    """Two bots and a host play one game in a thread of their own, pausing after
    SPINS_BEFORE_LOOKING spins until ``resume`` is set."""

    def __init__(self, port: int):
        self.port = port
        self.code: queue.Queue[str] = queue.Queue()
        self.go, self.resume = threading.Event(), threading.Event()
        self.paused: queue.Queue[tuple[int, ...]] = queue.Queue()  # the occupancy it paused at
        self.final: queue.Queue[FinalResults | BaseException] = queue.Queue()
        self.spins = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._play)
        except BaseException as exc:  # the test's thread reports it
            self.final.put(exc)

    async def _wait(self, event: threading.Event) -> None:
        with trio.fail_after(TIMEOUT):
            while not event.is_set():
                await trio.sleep(0.02)

    async def _play(self) -> None:
        host = await LGMPClient.connect("127.0.0.1", self.port)
        code = await host.host_room()
        players = []
        for name, avatar in (("Ada", 1), ("Bo", 4)):
            client = await LGMPClient.connect("127.0.0.1", self.port)
            assert await client.join(code) is JoinAnswer.PLAYER
            assert await client.ready(name, avatar) is ReadyAnswer.ACCEPTED
            players.append(client)
        self.code.put(code)
        await self._wait(self.go)
        results = []
        with trio.fail_after(TIMEOUT * 2):
            async with trio.open_nursery() as nursery:
                for client in players:
                    nursery.start_soon(self._bot, client, results)
                await trio.sleep(0.2)
                await host.send(StartGame())
        self.final.put(results[0])
        for client in (host, *players):
            await client.aclose()

    async def _bot(self, client: LGMPClient, results: list) -> None:
        brain = BotBrain(client.seat, random.Random(client.seat))
        while not isinstance(packet := await client.receive(), Reset):
            if isinstance(packet, FinalResults):
                results.append(packet)
            for reply in brain.react(packet):
                if isinstance(reply, Spin):
                    self.spins += 1
                    if self.spins == SPINS_BEFORE_LOOKING + 1:
                        self.paused.put(packet.occupancy)  # the GAME that asked for this spin
                        await self._wait(self.resume)
                await trio.sleep(0.03)  # a little slower than flat out, so the page can follow
                await client.send(reply)


def _pieces(page) -> Counter:
    return Counter(page.eval_on_selector_all("#pieces .piece", "els => els.map(e => Number(e.dataset.space))"))


def _wait_for(check, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}")
        time.sleep(0.05)


def test_the_spectator_page_shows_the_pieces_and_the_standings(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    server = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "serve", "--port", "0", "--http", "127.0.0.1:0", "--db",
         str(tmp_path / "results.sqlite3"), "--packet-rate", "1000", "--packet-burst", "1000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(re.search(r"LGMP server on [^:]+:(\d+)", server.stdout.readline()).group(1))
        url = re.search(r"HTTP on (http://\S+)", server.stdout.readline()).group(1)
        game = Game(port)
        game.thread.start()
        code = game.code.get(timeout=TIMEOUT)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{url}/rooms/{code}")
                _wait_for(lambda: page.inner_text("#live") == "live", "the live stream connected")
                assert page.locator(".space").count() == 56
                assert "Ada" in page.inner_text("#seats") and "Bo" in page.inner_text("#seats")
                game.go.set()

                occupancy = game.paused.get(timeout=TIMEOUT)
                where = Counter({space: n for space, n in enumerate(occupancy) if n})
                assert sum(where.values()) == 2
                _wait_for(lambda: _pieces(page) == where, f"the pieces on {dict(where)}")
                assert "game on" in page.inner_text("#status").lower()
                page.screenshot(path=str(tmp_path / "room-mid-game.png"), full_page=True)
                game.resume.set()

                final = game.final.get(timeout=TIMEOUT * 2)
                if isinstance(final, BaseException):
                    raise final
                expected = sorted((final.places[seat - 1], seat, final.careers[seat - 1]) for seat in (1, 2))
                rows = _wait_for(lambda: page.eval_on_selector_all(
                    "#standings li", "els => els.map(e => [e.dataset.place, Number(e.dataset.seat), "
                    "e.querySelector('.career').textContent])"), "the standings")
                assert [(int(place[0]), seat, career) for place, seat, career in rows] == expected
                assert "Final standings" in page.inner_text("#standings")
                # Each page region is pushed on its own, and the bots leave the room once the
                # game is over (a lobby leave frees the seat): every piece still shown is home.
                _wait_for(lambda: set(_pieces(page)) == {55}, "the remaining pieces on the finish")
                page.screenshot(path=str(tmp_path / "room-final.png"), full_page=True)
                print(f"screenshots: {tmp_path / 'room-mid-game.png'}, {tmp_path / 'room-final.png'}")
            finally:
                browser.close()
        assert (tmp_path / "room-final.png").stat().st_size > 10_000
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
