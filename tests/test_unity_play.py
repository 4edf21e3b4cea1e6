"""``lgmp play --dialect unity-2022``, ``lgmp bot --dialect`` and ``lgmp serve --dialect/--also-listen``.

A person (the scripted typist of tests/test_play.py) plays a whole game in the 2022
dialect, in a room whose host and bots speak v1.0 on the server's other port.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys

import trio

from lgmp import cli
from lgmp.clients.bot import play_bot
from lgmp.clients.client import LGMPClient
from lgmp.clients.play import PlaySession
from lgmp.limits import Limits
from lgmp.server.shell import LGMPServer
from lgmp.wire.dialects import DIALECTS
from lgmp.wire.packets import FinalResults, StartGame
from tests.test_play import Typist, eager, run_host, wait_ready

# The real clock here (the typist polls): a small gap keeps the game quick.
LIMITS = Limits(unity_packet_gap=0.005)


async def test_a_person_plays_a_whole_game_in_the_2022_dialect():
    server = LGMPServer(limits=LIMITS, seed=7, also_listen=[(0, "unity-2022")])
    typist = Typist(eager)
    results: list[FinalResults] = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        unity_port = server.listening[1][0]
        lobby: list[int] = []
        code = await nursery.start(run_host, port, 3, lobby, results)
        for i in range(2):
            nursery.start_soon(lambda i=i: play_bot("127.0.0.1", port, code, name=f"Bot{i + 1}", seed=7 + i))
        await wait_ready(lobby, 2)
        async with await LGMPClient.connect("127.0.0.1", unity_port, dialect="unity-2022") as client:
            session = PlaySession(client, typist, typist.out, rng=random.Random(7))
            with trio.fail_after(30):
                exit_code = await session.run(code)
        await server.shutdown()
        nursery.cancel_scope.cancel()
    text = typist.text()
    assert exit_code == 0, text
    assert "Username: Bot1\n" in text and "already has that username or that avatar" in text
    assert "You are Tester," in text and "in seat" not in text.split("You are Tester,")[1].split("\n")[0]
    assert "The game has started! You are seat 3." in text
    assert "Your turn! Press Enter to spin: " in text and "  turn: seat 1" in text
    assert "You chose System Architect in Business Data Analytics, $105,000 a year." in text
    assert "Final standings:" in text and text.rstrip().endswith("Thanks for playing!")
    assert session.results == results[0] and session.results.careers[2] == "System Architect"
    assert "too late" not in text and "Too slow" not in text


def test_the_cli_knows_the_dialects():
    assert set(cli.DIALECT_NAMES) == set(DIALECTS)
    args = cli.build_parser().parse_args(["serve", "--dialect", "unity-2022", "--also-listen", "1112:v1.0",
                                          "--also-listen", "1113:unity-2022"])
    assert args.dialect == "unity-2022" and args.also_listen == [(1112, "v1.0"), (1113, "unity-2022")]
    assert cli.build_parser().parse_args(["bot", "ABCD", "--dialect", "unity-2022"]).dialect == "unity-2022"
    assert cli.build_parser().parse_args(["play", "ABCD"]).dialect == "v1.0"
    bad = subprocess.run([sys.executable, "-m", "lgmp.cli", "serve", "--also-listen", "1112"], capture_output=True, text=True)
    assert bad.returncode == 2 and "PORT:DIALECT" in bad.stderr


async def test_lgmp_serve_with_two_dialects_and_bots_of_both():
    """The command line end to end: one server, a port per dialect, bots of each in one room."""
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    server = await trio.lowlevel.open_process(
        [sys.executable, "-m", "lgmp.cli", "serve", "--port", str(ports[0]), "--dialect", "unity-2022",
         "--also-listen", f"{ports[1]}:v1.0", "--no-db", "--no-http", "--unity-packet-gap", "0.005", "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(10):
            line = b""
            while not line.endswith(b"\n"):
                line += await server.stdout.receive_some(200)
        assert f"LGMP server on 127.0.0.1:{ports[0]} (unity-2022), {ports[1]} (v1.0)".encode() in line
        host = await LGMPClient.connect("127.0.0.1", ports[1])
        code = await host.host_room()
        bots = []

        async def bot(i: int, port: int, dialect: str) -> None:
            bots.append(await play_bot("127.0.0.1", port, code, name=f"B{i}", seed=i, dialect=dialect))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bot, 1, ports[0], "unity-2022")
            nursery.start_soon(bot, 2, ports[1], "v1.0")
            with trio.fail_after(10):
                ready = 0
                while ready < 2:
                    packet = await host.receive()
                    ready = sum(1 for a in getattr(packet, "avatars", ()) if a)
            await host.send(StartGame())
            with trio.fail_after(30):
                final = await host.wait_for(FinalResults)
        assert sorted(b.seat for b in bots) == [1, 2] and all(b.results == final for b in bots)
        await host.aclose()
    finally:
        server.terminate()
        with trio.move_on_after(5):
            await server.wait()


def test_other_dialects_need_a_single_process():
    for extra in (["--dialect", "unity-2022"], ["--also-listen", "1112:unity-2022"]):
        refused = subprocess.run([sys.executable, "-m", "lgmp.cli", "serve", "--workers", "2", "--no-db", "--no-http", *extra],
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "single process" in refused.stderr, refused.stderr
