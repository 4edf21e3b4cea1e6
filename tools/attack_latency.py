"""Attacks on a live ``lgmp serve``, measured: what the attacker gets, and what the others feel.

Starts ``lgmp serve`` in a subprocess (from ``--server-root``, to measure another
checkout: the "before" of a change) and, depending on ``--mode``:

* ``classic`` (default): a control room (a host and one player who spins ten
  times a second, answering its cards) measures SPIN->GAME latency for
  ``--seconds``, quiet and then while another process attacks with slowloris
  sockets (a byte at a time), flooders (valid packets far above the rate limit,
  reconnecting when closed) and garbage senders;
* ``connections`` / ``rooms``: one process from one address (``--source``) takes
  as many connections (each keeping itself alive with a JOIN every 3 s) or rooms
  (JOIN HOST) as the server gives it, while the control room plays from another
  address and a newcomer from a third tries to connect and host once a second;
* ``rejoin``: a game whose player dropped; rejoiners from one address guess the
  seat's name and avatar from a list with the real name at ``--name-position``;
  then the real player comes back from its own address;
* ``enumerate``: 100 live rooms (hosted from other addresses); one address JOINs
  random codes as fast as it can, reconnecting when closed;
* ``honest``: ``--games`` games of a host and six clients that answer at once
  exactly what they are asked, on the server's default limits: how many are cut;
* ``store``: the results file is write-locked by another process for
  ``--lock-seconds`` while games finish: FINLs sent, games stored;
* ``sigterm``: ``--members`` members in rooms, then two SIGTERMs 10 ms apart:
  how many members got their RSET, and the exit code.

Loopback only; each party binds its own 127.0.0.x; every loop is bounded.

    python -m tools.attack_latency --mode connections --seconds 20 --server-arg=--max-connections=3000
    python -m tools.attack_latency --mode rejoin --server-root /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import trio

from lgmp.clients.bot import BotBrain
from lgmp.clients.client import ConnectionClosed, LGMPClient
from lgmp.wire.codec import encode
from lgmp.wire.packets import (
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)

from .abuse_attacks import client_from, enumerate_codes, guess_seats, hold_sockets, name_list

HOST = "127.0.0.1"
CONTROL = "127.0.0.3"  # the control room's address
NEWCOMER = "127.0.0.4"  # a probe that connects and hosts once a second
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the control room -------------------------------------------------------------


async def control_room(port: int, seconds: float, source: str = CONTROL, pace: float = 0.1) -> list[float]:
    """Latencies (s) from sending SPIN to receiving the GAME it caused; a spin every ``pace`` s."""
    latencies: list[float] = []
    async with await client_from(source, port) as host, await client_from(source, port) as player:
        code = await host.host_room()
        await player.join(code)
        await player.ready("Control", 1)
        rng = random.Random(1)
        deadline = time.monotonic() + seconds

        async def host_loop() -> None:
            await host.send(StartGame())
            try:
                while True:
                    if isinstance(await host.receive(), Reset):
                        await host.send(StartGame())  # another game, same room
            except ConnectionClosed:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(host_loop)
            brain = BotBrain(1, rng)
            sent_at: float | None = None
            while time.monotonic() < deadline:
                packet = await player.receive()
                if isinstance(packet, GameUpdate) and sent_at is not None:
                    latencies.append(time.perf_counter() - sent_at)
                    sent_at = None
                if isinstance(packet, FinalResults):
                    brain = BotBrain(1, rng)
                for reply in brain.react(packet):
                    if isinstance(reply, Spin):
                        # Ten spins a second by default: brisk, and inside the flood
                        # limit that servers before invited packets applied to spins.
                        await trio.sleep(pace)
                        sent_at = time.perf_counter()
                    await player.send(reply)
            nursery.cancel_scope.cancel()
    return latencies


async def newcomer_probe(port: int, seconds: float) -> dict:
    """Once a second a client from another address connects and asks for a room."""
    tries = hosted = 0
    deadline = trio.current_time() + seconds
    while trio.current_time() < deadline:
        tries += 1
        try:
            with trio.move_on_after(2):
                async with await client_from(NEWCOMER, port) as client:
                    await client.send(JoinRequest("HOST"))
                    answer = await client.wait_for(lambda p: True)
                    hosted += getattr(answer, "response", 0) == JoinAnswer.HOST
        except (OSError, ConnectionClosed, trio.BrokenResourceError):
            pass
        await trio.sleep(1)
    return {"newcomer_tries": tries, "newcomer_hosted": hosted}


# --- the classic attack (its own process) -----------------------------------------------


async def classic_attack(port: int, seconds: float, slowloris: int, flooders: int, garbage: int, source: str) -> dict[str, int]:
    counts = {"slowloris connections": 0, "flood connections": 0, "garbage connections": 0}
    deadline = trio.current_time() + seconds

    async def connection(kind: str, behave) -> None:
        while trio.current_time() < deadline:
            try:
                stream = await trio.open_tcp_stream(HOST, port, local_address=source)
            except OSError:
                await trio.sleep(0.05)
                continue
            counts[kind] += 1
            try:
                with trio.move_on_at(deadline):
                    await behave(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                await stream.aclose()

    async def slow(stream) -> None:
        for byte in b"JOINHOST" * 1000:
            await stream.send_all(bytes([byte]))
            await trio.sleep(2)

    flood_packet = encode(JoinRequest("HOST")) + encode(ReadyRequest("Flood", 1)) * 500

    async def flood(stream) -> None:
        while True:
            await stream.send_all(flood_packet)
            if not await stream.receive_some(65536):
                return

    rng = random.Random(5)

    async def junk(stream) -> None:
        await stream.send_all(rng.randbytes(64 * 1024))
        while await stream.receive_some(65536):
            pass
        await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        for _ in range(slowloris):
            nursery.start_soon(connection, "slowloris connections", slow)
        for _ in range(flooders):
            nursery.start_soon(connection, "flood connections", flood)
        for _ in range(garbage):
            nursery.start_soon(connection, "garbage connections", junk)
    return counts


def run_attacker(args: argparse.Namespace) -> dict:
    port, seconds, source = args.attack_only, args.seconds, args.source
    if args.mode == "classic":
        return trio.run(classic_attack, port, seconds, args.slowloris, args.flooders, args.garbage, source)
    if args.mode == "connections":
        return trio.run(hold_sockets, port, seconds, source, args.sockets, JoinRequest("ZZZZ"))
    if args.mode == "rooms":
        return trio.run(hold_sockets, port, seconds, source, args.sockets, JoinRequest("HOST"))
    if args.mode == "rejoin":
        names = name_list(args.real_name, args.name_position)
        return trio.run(guess_seats, port, seconds, source, args.code, names, args.workers)
    if args.mode == "enumerate":
        return trio.run(enumerate_codes, port, seconds, source, args.workers)
    raise SystemExit(f"no attacker for mode {args.mode}")


# --- set-ups and checks in the driver -----------------------------------------------------


async def room_with_a_vacant_seat(port: int, nursery: trio.Nursery) -> tuple[str, LGMPClient]:
    """A game of a host and two players (from CONTROL); player 1 ("Ann", avatar 1) drops."""
    host = await client_from(CONTROL, port)
    code = await host.host_room()
    ann = await client_from(CONTROL, port)
    await ann.join(code)
    await ann.ready("Ann", 1)
    bob = await client_from(CONTROL, port)
    await bob.join(code)
    await bob.ready("Bob", 2)
    await host.send(StartGame())
    await ann.wait_for(GameUpdate)
    await ann.aclose()
    nursery.start_soon(_drain, host)
    nursery.start_soon(_drain, bob)  # Bob never spins: the game waits on him
    return code, bob


async def _drain(client: LGMPClient) -> None:
    try:
        while True:
            await client.receive()
    except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def real_player_returns(port: int, code: str) -> str:
    async with await client_from(CONTROL, port) as ann:
        answer = await ann.join(code)
        if answer is not JoinAnswer.PLAYER:
            return f"JOIN answered {int(answer)}"
        verdict = await ann.ready("Ann", 1)
        return "got the seat back (REDY 1)" if verdict is ReadyAnswer.ACCEPTED else f"refused (REDY {int(verdict)})"


async def live_rooms(port: int, count: int, nursery: trio.Nursery) -> list[str]:
    """``count`` rooms, each hosted from one of several addresses (8 per address)."""
    codes = []
    for i in range(count):
        host = await client_from(f"127.0.1.{1 + i // 8}", port)
        codes.append(await host.host_room())
        nursery.start_soon(_drain, host)
    return codes


async def honest_games(port: int, games: int, rooms: int) -> dict:
    """``games`` games in ``rooms`` rooms of a host and six clients answering at once."""
    per_room = -(-games // rooms)
    result = {"games": 0, "players_cut": 0, "players": rooms * 6}

    async def player(address: str, code: str, seat_name: str, avatar: int) -> None:
        client = await client_from(address, port)
        await client.join(code)
        await client.ready(seat_name, avatar)
        brain = BotBrain(client.seat, random.Random(avatar))
        played = 0
        try:
            while played < per_room:
                packet = await client.receive()
                if isinstance(packet, Reset):
                    played += 1
                    brain = BotBrain(client.seat, random.Random(played))
                    continue
                for reply in brain.react(packet):
                    await client.send(reply)
        except (ConnectionClosed, trio.BrokenResourceError):
            result["players_cut"] += 1
        finally:
            await client.aclose()

    async def room(index: int) -> None:
        address = f"127.0.2.{index + 1}"
        host = await client_from(address, port)
        code = await host.host_room()
        async with trio.open_nursery() as nursery:
            for seat in range(1, 7):
                nursery.start_soon(player, address, code, f"P{seat}", seat)
            while sum(1 for a in host.avatars if a) < 6:
                await host.receive()
            played = 0
            await host.send(StartGame())
            try:
                with trio.move_on_after(60):
                    while played < per_room:
                        packet = await host.receive()
                        if isinstance(packet, FinalResults):
                            played += 1
                            result["games"] += 1
                        elif isinstance(packet, Reset) and played < per_room:
                            await host.send(StartGame())
            except (ConnectionClosed, trio.BrokenResourceError):
                result["hosts_cut"] = result.get("hosts_cut", 0) + 1
                nursery.cancel_scope.cancel()
        await host.aclose()

    async with trio.open_nursery() as nursery:
        for i in range(rooms):
            nursery.start_soon(room, i)
    return result


async def finished_games_while_locked(port: int, games: int, lock_seconds: float) -> dict:
    """``games`` rooms (a host and two bots) finish while the results file is locked."""
    t0 = time.monotonic()
    finl_at: list[float] = []

    async def one(index: int) -> None:
        address = f"127.0.3.{index + 1}"
        host = await client_from(address, port)
        code = await host.host_room()
        async with trio.open_nursery() as nursery:
            for seat in (1, 2):
                nursery.start_soon(_bot_game, address, port, code, seat)
            while sum(1 for a in host.avatars if a) < 2:
                await host.receive()
            await host.send(StartGame())
            with trio.move_on_after(lock_seconds + 40):
                await host.wait_for(FinalResults)
                finl_at.append(round(time.monotonic() - t0, 1))
            nursery.cancel_scope.cancel()
        await host.aclose()

    async with trio.open_nursery() as nursery:
        for i in range(games):
            nursery.start_soon(one, i)
    return {"finl_sent_at_s": sorted(finl_at)}


async def _bot_game(address: str, port: int, code: str, seat: int) -> None:
    client = await client_from(address, port)
    try:
        await client.join(code)
        await client.ready(f"B{seat}", seat)
        brain = BotBrain(client.seat, random.Random(seat))
        while True:
            packet = await client.receive()
            for reply in brain.react(packet):
                await trio.sleep(0.05)  # within any flood limit
                await client.send(reply)
    except (ConnectionClosed, trio.BrokenResourceError):
        pass
    finally:
        await client.aclose()


async def members_for_sigterm(port: int, members: int, held: list) -> None:
    """Rooms of a host and five players, from several addresses, until ``members`` are in."""
    index = 0
    while len(held) < members:
        address = f"127.0.4.{1 + index // 8}"
        host = await client_from(address, port)
        code = await host.host_room()
        held.append(host)
        for seat in range(1, 6):
            if len(held) >= members:
                break
            player = await client_from(address, port)
            await player.join(code)
            held.append(player)
        index += 1


async def count_resets(clients: list) -> int:
    got = 0

    async def one(client: LGMPClient) -> None:
        nonlocal got
        try:
            with trio.move_on_after(15):
                while True:
                    if isinstance(await client.receive(), Reset):
                        got += 1
                        return
        except (ConnectionClosed, trio.BrokenResourceError):
            pass

    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(one, client)
    return got


# --- driver ------------------------------------------------------------------------------


def _summary(latencies: list[float]) -> tuple[int, float, float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    return len(ordered), statistics.median(ordered) * 1000 if ordered else float("nan"), p99 * 1000, (ordered[-1] * 1000 if ordered else float("nan"))


def start_server(args: argparse.Namespace, port: int, extra: list[str]) -> subprocess.Popen:
    root = os.path.abspath(args.server_root or _ROOT)
    env = dict(os.environ, PYTHONPATH=root)
    server = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "--log-level", args.server_log_level, "serve", "--no-http", "--port", str(port), *extra, *args.server_arg],
        stdout=subprocess.PIPE, stderr=open(args.server_log, "w") if args.server_log else subprocess.DEVNULL, text=True, cwd=root, env=env,
    )
    line = server.stdout.readline()
    if "server on" not in line:
        raise SystemExit(f"the server did not start: {line!r}")
    return server


def attacker(args: argparse.Namespace, port: int, seconds: float, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tools.attack_latency", "--attack-only", str(port), "--mode", args.mode, "--seconds", str(seconds),
         "--source", args.source, "--slowloris", str(args.slowloris), "--flooders", str(args.flooders), "--garbage", str(args.garbage),
         "--sockets", str(args.sockets), "--workers", str(args.workers), *extra],
        stdout=subprocess.PIPE, text=True, cwd=_ROOT,
    )


def _report(attack: subprocess.Popen, timeout: float) -> dict:
    out = attack.communicate(timeout=timeout)[0].strip().splitlines()
    return json.loads(out[-1]) if out else {}


def measure(args: argparse.Namespace) -> dict:
    port = _free_port()
    seconds = args.seconds
    figures: dict = {"mode": args.mode, "server_root": os.path.abspath(args.server_root or _ROOT)}
    extra = ["--no-db"]
    db_dir = None
    if args.mode == "store":
        db_dir = tempfile.mkdtemp(prefix="lgmp-attack-")
        db = os.path.join(db_dir, "results.sqlite3")
        extra = ["--db", db]
    server = start_server(args, port, extra)
    try:
        if args.mode in ("classic", "connections", "rooms"):
            if not args.no_quiet:
                figures["quiet"] = trio.run(control_room, port, seconds)
            attack = attacker(args, port, seconds + 2)
            time.sleep(1.0)  # let the attack ramp up

            async def loud() -> tuple[list[float], dict]:
                probe: dict = {}
                async with trio.open_nursery() as nursery:
                    async def run_probe():
                        probe.update(await newcomer_probe(port, seconds))
                    nursery.start_soon(run_probe)
                    latencies = await control_room(port, seconds)
                return latencies, probe

            figures["under attack"], probe = trio.run(loud)
            figures.update(probe)
            figures["attack"] = _report(attack, seconds + 60)
        elif args.mode == "rejoin":
            async def rejoin() -> None:
                async with trio.open_nursery() as nursery:
                    code, _ = await room_with_a_vacant_seat(port, nursery)
                    attack = attacker(args, port, seconds, "--code", code, "--real-name", "Ann", "--name-position", str(args.name_position))
                    await trio.sleep(seconds * 0.8)  # the attack is still on: the real player comes back
                    figures["real player"] = await real_player_returns(port, code)
                    await trio.to_thread.run_sync(attack.wait)
                    figures["attack"] = json.loads(attack.stdout.read().strip().splitlines()[-1])
                    nursery.cancel_scope.cancel()
            trio.run(rejoin)
        elif args.mode == "enumerate":
            async def enumerate_() -> None:
                async with trio.open_nursery() as nursery:
                    codes = await live_rooms(port, 100, nursery)
                    figures["live rooms"] = len(codes)
                    attack = attacker(args, port, seconds)
                    await trio.to_thread.run_sync(attack.wait)
                    figures["attack"] = json.loads(attack.stdout.read().strip().splitlines()[-1])
                    nursery.cancel_scope.cancel()
            trio.run(enumerate_)
        elif args.mode == "honest":
            figures["honest"] = trio.run(honest_games, port, args.games, args.rooms)
        elif args.mode == "store":
            figures.update(_store_run(args, port, db))
        elif args.mode == "sigterm":
            figures.update(_sigterm_run(args, port, server))
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        figures["server exit code"] = server.wait()
    if args.mode == "store":
        reader = sqlite3.connect(db)
        figures["games stored"] = reader.execute("SELECT count(*) FROM games").fetchone()[0]
        reader.close()
        journal = db + ".pending.jsonl"
        figures["games journalled"] = len(open(journal).read().splitlines()) if os.path.exists(journal) else 0
    return figures


def _store_run(args: argparse.Namespace, port: int, db: str) -> dict:
    locked = threading.Event()
    unlock_at: list[float] = []

    def lock() -> None:
        conn = sqlite3.connect(db, timeout=30)
        conn.execute("BEGIN IMMEDIATE")  # what another process writing the file does
        locked.set()
        time.sleep(args.lock_seconds)
        conn.rollback()
        conn.close()
        unlock_at.append(time.monotonic())

    t0 = time.monotonic()
    locker = threading.Thread(target=lock)
    locker.start()
    locked.wait()
    figures = trio.run(finished_games_while_locked, port, args.games, args.lock_seconds)
    locker.join()
    figures["lock released at_s"] = round(unlock_at[0] - t0, 1)
    time.sleep(2)  # what the server still has to store, after the lock
    return figures


def _sigterm_run(args: argparse.Namespace, port: int, server: subprocess.Popen) -> dict:
    async def run() -> dict:
        held: list[LGMPClient] = []
        await members_for_sigterm(port, args.members, held)
        await trio.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        await trio.sleep(0.01)
        server.send_signal(signal.SIGTERM)
        resets = await count_resets(held)
        return {"members": len(held), "members with RSET": resets}

    figures = trio.run(run)
    try:
        figures["exit code"] = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        figures["exit code"] = "still running after 20 s"
    return figures


def print_figures(figures: dict) -> None:
    for name in ("quiet", "under attack"):
        if name in figures:
            n, p50, p99, worst = _summary(figures.pop(name))
            print(f"control room {name:<13} spins {n:>5}  SPIN->GAME p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {worst:7.2f} ms")
    for key, value in figures.items():
        print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="classic", choices=["classic", "connections", "rooms", "rejoin", "enumerate", "honest", "store", "sigterm"])
    parser.add_argument("--seconds", type=float, default=10.0, help="attack (and each control measurement) length")
    parser.add_argument("--source", default="127.0.0.2", help="the attacker's address")
    parser.add_argument("--server-root", help="run the server from this checkout (default: this one)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra lgmp serve argument (repeatable)")
    parser.add_argument("--server-log", help="write the server's log here")
    parser.add_argument("--server-log-level", default="warning")
    parser.add_argument("--no-quiet", action="store_true", help="skip the quiet control measurement")
    parser.add_argument("--slowloris", type=int, default=300)
    parser.add_argument("--flooders", type=int, default=20)
    parser.add_argument("--garbage", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=5200, help="connections/rooms: sockets the attacker keeps trying to hold")
    parser.add_argument("--workers", type=int, default=300, help="rejoin/enumerate: concurrent attacker connections")
    parser.add_argument("--name-position", type=int, default=300, help="rejoin: where the real name is in the guess list")
    parser.add_argument("--games", type=int, default=150, help="honest/store: games to play")
    parser.add_argument("--rooms", type=int, default=15, help="honest: rooms playing at once")
    parser.add_argument("--lock-seconds", type=float, default=25.0, help="store: how long the results file stays locked")
    parser.add_argument("--members", type=int, default=590, help="sigterm: members in rooms when the signals come")
    parser.add_argument("--attack-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--real-name", default="Ann", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack_only:
        print(json.dumps(run_attacker(args)), flush=True)
        return 0
    figures = measure(args)
    print_figures(dict(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
