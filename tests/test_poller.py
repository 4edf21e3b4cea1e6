"""lgmp.server.poller: one task reading many sockets, with per-socket deadlines."""

from __future__ import annotations

import logging
import socket

import trio
import trio.testing

from lgmp.server.poller import ReadPoller


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


async def _poll_until(poller: ReadPoller, done) -> None:
    """Run ``poller`` until ``done()`` (within 5 s), then stop it."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        with trio.fail_after(5):
            while not done():
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


async def test_each_readable_socket_gets_its_callback_until_removed():
    poller = ReadPoller()
    pairs = [_pair() for _ in range(5)]
    got: dict[int, bytes] = {}
    done = trio.Event()

    def reader(sock):
        def readable():
            got[sock.fileno()] = got.get(sock.fileno(), b"") + sock.recv(100)
            if len(got) == len(pairs) and all(got.values()):
                done.set()
        return readable

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        for ours, _ in pairs:
            poller.add(ours.fileno(), reader(ours))
        assert len(poller) == 5
        for index, (_, theirs) in enumerate(pairs):
            theirs.send(b"x%d" % index)
        with trio.fail_after(5):
            await done.wait()
        assert sorted(got.values()) == [b"x%d" % i for i in range(5)]
        # Removed: no more callbacks, whatever arrives.
        first, theirs = pairs[0]
        poller.remove(first.fileno())
        poller.remove(first.fileno())  # twice is fine
        theirs.send(b"late")
        await trio.sleep(0.05)
        assert got[first.fileno()] == b"x0"
        assert first.recv(100) == b"late"
        nursery.cancel_scope.cancel()
    for a, b in pairs:
        a.close()
        b.close()


async def test_deadlines_fire_in_order_and_a_later_one_replaces_an_earlier(autojump_clock):
    poller = ReadPoller()
    (a, a2), (b, b2), (c, c2) = _pair(), _pair(), _pair()
    fired = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        for sock in (a, b, c):
            poller.add(sock.fileno(), lambda: None)
        start = trio.current_time()
        poller.call_at(a.fileno(), start + 30, lambda now: fired.append(("a", now - start)))
        poller.call_at(b.fileno(), start + 10, lambda now: fired.append(("b-old", now - start)))
        await trio.sleep(1)
        # While the poller waits for b's 10 s, an earlier deadline must wake it sooner.
        poller.call_at(c.fileno(), start + 5, lambda now: fired.append(("c", now - start)))
        poller.call_at(b.fileno(), start + 20, lambda now: fired.append(("b", now - start)))
        await trio.sleep(40)
        nursery.cancel_scope.cancel()
    assert [name for name, _ in fired] == ["c", "b", "a"]
    assert [round(at) for _, at in fired] == [5, 20, 30]
    for sock in (a, a2, b, b2, c, c2):
        sock.close()


async def test_removing_a_socket_drops_its_deadline(autojump_clock):
    poller = ReadPoller()
    a, a2 = _pair()
    fired = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        poller.add(a.fileno(), lambda: None)
        poller.call_at(a.fileno(), trio.current_time() + 5, fired.append)
        poller.remove(a.fileno())
        poller.call_at(a.fileno(), trio.current_time() + 5, fired.append)  # not in the set: ignored
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert fired == []
    a.close()
    a2.close()


async def test_a_callback_that_raises_costs_its_socket_only(caplog):
    poller = ReadPoller()
    (bad, bad2), (good, good2) = _pair(), _pair()
    seen = trio.Event()

    def broken():
        raise RuntimeError("a bug")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        poller.add(bad.fileno(), broken)
        poller.add(good.fileno(), lambda: (good.recv(10), seen.set()))
        with caplog.at_level(logging.ERROR, logger="lgmp.server"):
            bad2.send(b"x")
            await trio.sleep(0.05)
            good2.send(b"y")
            with trio.fail_after(5):
                await seen.wait()
        assert len(poller) == 1  # the broken one was dropped, the other still served
        nursery.cancel_scope.cancel()
    assert "a read callback failed" in caplog.text
    for sock in (bad, bad2, good, good2):
        sock.close()


async def test_once_stopped_it_takes_no_more_sockets():
    poller = ReadPoller()
    a, a2 = _pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        await trio.sleep(0)
        nursery.cancel_scope.cancel()
    poller.add(a.fileno(), lambda: None)  # the server is going away: nothing, no error
    poller.remove(a.fileno())
    assert len(poller) == 0
    a.close()
    a2.close()


async def test_after_round_runs_once_per_round_after_its_callbacks():
    rounds = []
    poller = ReadPoller(after_round=lambda: rounds.append(list(seen)))
    pairs = [_pair() for _ in range(3)]
    seen: list[int] = []
    in_round: list[bool] = []

    def reader(sock):
        def readable():
            in_round.append(poller.in_round)
            sock.recv(100)
            seen.append(sock.fileno())
        return readable

    for ours, _ in pairs:
        poller.add(ours.fileno(), reader(ours))
    for _, theirs in pairs:  # all three readable before the poller first looks
        theirs.send(b"x")
    await _poll_until(poller, lambda: len(seen) == 3)
    assert in_round == [True, True, True] and poller.in_round is False
    assert rounds == [seen]  # one round saw all three, and the hook ran after them
    for a, b in pairs:
        a.close()
        b.close()


async def test_more_ready_sockets_than_a_round_takes_are_served_over_several_rounds(monkeypatch):
    monkeypatch.setattr("lgmp.server.poller.POLL_BATCH", 2)
    rounds = []
    poller = ReadPoller(after_round=lambda: rounds.append(len(seen)))
    pairs = [_pair() for _ in range(5)]
    seen: list[int] = []

    def reader(sock):
        def readable():
            sock.recv(100)
            seen.append(sock.fileno())
        return readable

    for ours, theirs in pairs:
        poller.add(ours.fileno(), reader(ours))
        theirs.send(b"x")
    await _poll_until(poller, lambda: len(seen) == 5)
    assert sorted(seen) == sorted(ours.fileno() for ours, _ in pairs)  # each once
    assert rounds[:3] == [2, 4, 5]  # at most two per round, the scheduler running between
    for a, b in pairs:
        a.close()
        b.close()
