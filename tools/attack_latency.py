"""SPIN->GAME latency of a control room, quiet and under attack.

Starts ``lgmp serve`` in a subprocess, then measures a control room (a host and
one player who spins as soon as it may, answering its cards) for ``--seconds``
twice: once alone, once while another process attacks the same server with
slowloris sockets (a byte at a time), flooders (valid packets far above the
rate limit, reconnecting when closed) and garbage senders. Loopback only; every
loop is bounded by ``--seconds``.

    python -m tools.attack_latency [--seconds 10] [--slowloris 300] [--flooders 20] [--garbage 20]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import time

import trio

from lgmp.clients.bot import BotBrain
from lgmp.clients.client import ConnectionClosed, LGMPClient
from lgmp.wire.codec import encode
from lgmp.wire.packets import FinalResults, GameUpdate, JoinRequest, ReadyRequest, Reset, Spin, StartGame

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the control room -------------------------------------------------------------


async def control_room(port: int, seconds: float) -> list[float]:
    """Latencies (s) from sending SPIN to receiving the GAME it caused."""
    latencies: list[float] = []
    async with await LGMPClient.connect(HOST, port) as host, await LGMPClient.connect(HOST, port) as player:
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
                        # Ten spins a second: brisk, and inside the flood limit a
                        # real client must respect.
                        await trio.sleep(0.1)
                        sent_at = time.perf_counter()
                    await player.send(reply)
            nursery.cancel_scope.cancel()
    return latencies


# --- the attack (its own process) -----------------------------------------------------


async def attack(port: int, seconds: float, slowloris: int, flooders: int, garbage: int) -> dict[str, int]:
    counts = {"slowloris connections": 0, "flood connections": 0, "garbage connections": 0}
    deadline = trio.current_time() + seconds

    async def connection(kind: str, behave) -> None:
        while trio.current_time() < deadline:
            try:
                stream = await trio.open_tcp_stream(HOST, port)
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


# --- driver ------------------------------------------------------------------------------


def _summary(latencies: list[float]) -> tuple[int, float, float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    return len(ordered), statistics.median(ordered) * 1000 if ordered else float("nan"), p99 * 1000, (ordered[-1] * 1000 if ordered else float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slowloris", type=int, default=300)
    parser.add_argument("--flooders", type=int, default=20)
    parser.add_argument("--garbage", type=int, default=20)
    parser.add_argument("--attack-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack_only:
        counts = trio.run(attack, args.attack_only, args.seconds, args.slowloris, args.flooders, args.garbage)
        print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
        return 0

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lgmp.cli", "--log-level", "warning", "serve", "--no-db", "--no-http", "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        server.stdout.readline()
        print(f"server pid {server.pid} on port {port}; measuring quiet for {args.seconds:g} s", file=sys.stderr)
        quiet = trio.run(control_room, port, args.seconds)
        print("measuring under attack", file=sys.stderr)
        attacker = subprocess.Popen(
            [sys.executable, "-m", "tools.attack_latency", "--attack-only", str(port), "--seconds", str(args.seconds + 2),
             "--slowloris", str(args.slowloris), "--flooders", str(args.flooders), "--garbage", str(args.garbage)],
            stdout=subprocess.PIPE, text=True,
        )
        time.sleep(1.0)  # let the attack ramp up
        loud = trio.run(control_room, port, args.seconds)
        attack_report = attacker.communicate(timeout=args.seconds + 30)[0].strip()
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{'control room':<14} {'spins':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, data in (("quiet", quiet), ("under attack", loud)):
        n, p50, p99, worst = _summary(data)
        print(f"{name:<14} {n:>7} {p50:>8.2f} {p99:>8.2f} {worst:>8.2f}")
    print(f"attack: {attack_report}; server alive afterwards: {alive}")
    return 0 if alive and quiet and loud else 1


if __name__ == "__main__":
    raise SystemExit(main())
