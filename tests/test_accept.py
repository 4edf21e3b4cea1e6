"""lgmp.server.accept: connections accepted in bursts, with their addresses."""

from __future__ import annotations

import socket

import pytest
import trio

from lgmp.server.accept import ACCEPT_BURST, Acceptor


async def _listener() -> trio.SocketListener:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=512)
    return listener


async def test_every_queued_connection_is_accepted_in_bursts_with_its_address():
    listener = await _listener()
    port = listener.socket.getsockname()[1]
    acceptor = Acceptor(listener)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(ACCEPT_BURST + 10)]
    try:
        bursts = []
        with trio.fail_after(10):
            while sum(len(b) for b in bursts) < len(clients):
                bursts.append(await acceptor.accept())
        # The kernel had them all queued: a first burst full, the rest in the next.
        assert len(bursts[0]) == ACCEPT_BURST
        accepted = [pair for burst in bursts for pair in burst]
        assert sorted(address for _, address in accepted) == sorted(c.getsockname() for c in clients)
        # The streams work as trio's own: data goes both ways.
        stream, address = accepted[0]
        client = next(c for c in clients if c.getsockname() == address)
        client.sendall(b"SPIN")
        with trio.fail_after(5):
            assert await stream.receive_some(10) == b"SPIN"
        await stream.send_all(b"GAME")
        assert client.recv(10) == b"GAME"
        for stream, _ in accepted:
            await stream.aclose()
    finally:
        for client in clients:
            client.close()
        acceptor.close()
        await listener.aclose()


async def test_closing_the_listener_wakes_the_acceptor_and_frees_the_port():
    listener = await _listener()
    port = listener.socket.getsockname()[1]
    acceptor = Acceptor(listener)
    ended = []

    async def accept_until_closed():
        try:
            await acceptor.accept()
        except trio.ClosedResourceError:
            ended.append("closed")
        finally:
            acceptor.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_until_closed)
        await trio.sleep(0.05)
        await listener.aclose()
    assert ended == ["closed"]
    # Neither the listener nor the acceptor's duplicate still listens.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_an_error_met_mid_burst_comes_after_the_sockets_already_accepted(monkeypatch):
    listener = await _listener()
    port = listener.socket.getsockname()[1]
    acceptor = Acceptor(listener)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    real = acceptor._sock
    calls = []

    class FailsSecond:
        def accept(self):
            calls.append(1)
            if len(calls) == 2:
                raise OSError(24, "Too many open files")  # EMFILE: the caller backs off
            return real.accept()

    acceptor._sock = FailsSecond()
    try:
        with trio.fail_after(5):
            first = await acceptor.accept()
            assert len(first) == 1
            with pytest.raises(OSError) as raised:
                await acceptor.accept()
            assert raised.value.errno == 24
            second = await acceptor.accept()
        assert len(second) == 1
        for stream, _ in first + second:
            await stream.aclose()
    finally:
        acceptor._sock = real
        for client in clients:
            client.close()
        acceptor.close()
        await listener.aclose()


async def test_an_acceptor_whose_listener_closed_while_it_was_not_waiting_says_closed():
    # The accept loop may be elsewhere (backing off after EMFILE) when the listener
    # closes: its next accept must not accept through the duplicate, nor wait on -1.
    listener = await _listener()
    port = listener.socket.getsockname()[1]
    acceptor = Acceptor(listener)
    client = socket.create_connection(("127.0.0.1", port))  # queued: the duplicate could take it
    await listener.aclose()
    try:
        with trio.fail_after(5), pytest.raises(trio.ClosedResourceError):
            await acceptor.accept()
    finally:
        acceptor.close()
        client.close()
