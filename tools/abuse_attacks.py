"""The attacks of issue 13, each from one source address, for ``tools.attack_latency``.

Every attack runs in a process of its own (``python -m tools.attack_latency
--attack-only PORT --mode MODE``) so it never shares an event loop with the
control room being measured, and prints one JSON object of figures at the end.
Loopback only: 127.0.0.0/8 gives each party its own source address (the
attacker binds 127.0.0.2 by default; the control room, setup and probes use
others). Every loop is bounded by the attack's deadline.

* ``connections``: open sockets as fast as possible, each sending an 8-byte
  ``JOIN`` every few seconds, reconnecting when closed: how many the server
  serves at once (peak) and how fast it got there;
* ``rooms``: ``JOIN HOST`` on as many sockets as it can: rooms held (peak);
* ``rejoin``: rejoiners guess a vacant seat's name and avatar from a list, the
  avatars shown narrowing the guess: guesses per second, and whether and when a
  seat was taken;
* ``enumerate``: ``JOIN`` random codes, pipelined, reconnecting when closed:
  JOINs per second and how many live rooms were found.
"""

from __future__ import annotations

import random
import string
import time

import trio

from lgmp.clients.client import LGMPClient
from lgmp.wire.codec import Decoded, Decoder, encode
from lgmp.wire.packets import Direction, JoinRequest, JoinResponse, ReadyRequest, ReadyResponse

HOST = "127.0.0.1"
_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


async def connect_from(source: str, port: int) -> trio.SocketStream:
    return await trio.open_tcp_stream(HOST, port, local_address=source)


async def _connect_or_pause(source: str, port: int) -> trio.SocketStream | None:
    """A connection, or None after a short pause when the server refused it (the
    attackers keep trying for as long as their attack lasts)."""
    try:
        return await connect_from(source, port)
    except OSError:
        await trio.sleep(0.05)
        return None


async def client_from(source: str, port: int) -> LGMPClient:
    return LGMPClient(await connect_from(source, port))


def _packets(decoder: Decoder, data: bytes) -> list:
    """The whole packets ``data`` completes (bad bytes end the list)."""
    decoder.receive_data(data)
    packets = []
    while isinstance(item := decoder.next_packet(), Decoded):
        packets.append(item.packet)
    return packets


def name_list(real: str, position: int, size: int = 2000) -> list[str]:
    """Guesses a rejoiner might try, with the real name at ``position``."""
    rng = random.Random(13)
    names = ["".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 8))) for _ in range(size)]
    names[position] = real
    return names


# --- connections and rooms ---------------------------------------------------------


async def hold_sockets(port: int, seconds: float, source: str, sockets: int, packet: JoinRequest) -> dict:
    """``sockets`` tasks, each holding one socket that sends ``packet`` every 3 s; counts
    the sockets the server is serving (answered at least once, not closed) and their peak."""
    start = time.monotonic()
    deadline = trio.current_time() + seconds
    state = {"opened": 0, "served_now": 0, "peak_served": 0, "peak_at_s": 0.0, "answers": {}, "closed_by_server": 0}
    data = encode(packet)

    async def holder() -> None:
        while trio.current_time() < deadline:
            stream = await _connect_or_pause(source, port)
            if stream is None:
                continue
            state["opened"] += 1
            served = closed = False
            decoder = Decoder(Direction.SERVER_TO_CLIENT)
            try:
                with trio.move_on_at(deadline):
                    while not closed:
                        await stream.send_all(data)
                        # Read until the next keep-alive is due, so a close is seen at once.
                        with trio.move_on_after(3):
                            while True:
                                chunk = await stream.receive_some(4096)
                                if not chunk:
                                    state["closed_by_server"] += 1
                                    closed = True
                                    break
                                for answer in _packets(decoder, chunk):
                                    if isinstance(answer, JoinResponse):
                                        state["answers"][answer.response] = state["answers"].get(answer.response, 0) + 1
                                if not served:
                                    served = True
                                    state["served_now"] += 1
                                    if state["served_now"] > state["peak_served"]:
                                        state["peak_served"] = state["served_now"]
                                        state["peak_at_s"] = round(time.monotonic() - start, 2)
            except _ERRORS:
                state["closed_by_server"] += 1
            finally:
                if served:
                    state["served_now"] -= 1
                await stream.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(sockets):
            nursery.start_soon(holder)
            await trio.sleep(0)
    state["answers"] = {str(k): v for k, v in sorted(state["answers"].items())}
    return state


# --- rejoin guessing ------------------------------------------------------------------


async def guess_seats(port: int, seconds: float, source: str, code: str, names: list[str], workers: int) -> dict:
    """Rejoiners guess (name, avatar) for a vacant seat of room ``code``; each worker takes
    the next name; avatars to try are the ones the server shows (non-zero) or, if it
    hides them, every avatar no present player shows."""
    start = time.monotonic()
    deadline = trio.current_time() + seconds
    state = {"guesses": 0, "connections": 0, "taken_after_s": None, "taken_as": None, "guessing_s": None}
    queue = iter([(name, avatar) for name in names for avatar in range(1, 7)])
    shown: dict[str, tuple[int, ...]] = {}

    def next_guess():
        for name, avatar in queue:
            avatars = shown.get("avatars", ())
            if avatars and avatar not in avatars:
                continue  # the server showed the seats' avatars: try only those
            return name, avatar
        return None

    async def worker() -> None:
        while trio.current_time() < deadline and state["taken_as"] is None:
            try:
                client = await client_from(source, port)
            except OSError:
                await trio.sleep(0.05)
                continue
            state["connections"] += 1
            try:
                with trio.move_on_at(deadline):
                    await client.send(JoinRequest(code))
                    answer = await client.wait_for(JoinResponse)
                    if answer.response != 2:
                        return  # no vacant seat any more
                    update = await client.wait_for(ReadyResponse)
                    if any(update.avatars) and "avatars" not in shown and sum(1 for a in update.avatars if a) > 1:
                        shown["avatars"] = tuple(a for a in update.avatars if a)
                    while state["taken_as"] is None:
                        guess = next_guess()
                        if guess is None:
                            state["guessing_s"] = state["guessing_s"] or round(time.monotonic() - start, 2)
                            return
                        await client.send(ReadyRequest(*guess))
                        state["guesses"] += 1
                        reply = await client.wait_for(lambda p: isinstance(p, ReadyResponse) and p.response != 0)
                        if reply.response == 1:
                            state["taken_after_s"] = round(time.monotonic() - start, 3)
                            state["taken_as"] = list(guess)
                            await trio.sleep_until(deadline)  # keep the seat
            except _ERRORS + (Exception,):
                pass
            finally:
                await client.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    state["seconds"] = round(time.monotonic() - start, 2)
    guessing = state["taken_after_s"] or state["guessing_s"] or state["seconds"]
    state["guesses_per_s"] = round(state["guesses"] / max(guessing, 1e-9))
    return state


# --- code enumeration --------------------------------------------------------------------


async def enumerate_codes(port: int, seconds: float, source: str, workers: int, batch: int = 50) -> dict:
    """JOIN random codes, ``batch`` at a time per connection, reconnecting when closed."""
    start = time.monotonic()
    deadline = trio.current_time() + seconds
    state = {"joins": 0, "found": set(), "connections": 0}
    rng = random.Random(4)

    async def worker() -> None:
        while trio.current_time() < deadline:
            stream = await _connect_or_pause(source, port)
            if stream is None:
                continue
            state["connections"] += 1
            decoder = Decoder(Direction.SERVER_TO_CLIENT)
            try:
                with trio.move_on_at(deadline):
                    joined = False
                    while not joined:
                        codes = ["".join(rng.choice(string.ascii_uppercase) for _ in range(4)) for _ in range(batch)]
                        await stream.send_all(b"".join(encode(JoinRequest(c)) for c in codes))
                        answered = 0
                        while answered < batch and not joined:
                            chunk = await stream.receive_some(65536)
                            if not chunk:
                                raise trio.BrokenResourceError("closed")
                            for packet in _packets(decoder, chunk):
                                if isinstance(packet, JoinResponse) and not joined:
                                    state["joins"] += 1
                                    if packet.response in (2, 3, 5):
                                        state["found"].add(codes[answered])
                                    # Seated in a stranger's room: the rest of the batch
                                    # is now "a second JOIN". Start over on a new socket.
                                    joined = packet.response == 2
                                    answered += 1
            except _ERRORS:
                pass
            finally:
                await stream.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    took = time.monotonic() - start
    return {"joins": state["joins"], "joins_per_s": round(state["joins"] / took), "connections": state["connections"],
            "rooms_found": len(state["found"]), "seconds": round(took, 2)}
