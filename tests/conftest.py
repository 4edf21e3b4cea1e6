"""Shared fixtures: an LGMP server in this process on a loopback port, and clients for it.

* ``lgmp_server(**kwargs)`` starts an ``LGMPServer`` (port 0) and returns a ``Net`` bound
  to it; every server and client it made is shut down / closed when the test ends.
* ``net``: one server with the defaults below; ``server``: its ``(server, port)``.

``Net`` opens clients (``client``), creates rooms (``host``) and seats ready players
(``player``). The module-level helpers wait for packets with a timeout, so a missing
packet fails the test quickly instead of hanging it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio

from lgmp.clients.client import ConnectionClosed, LGMPClient
from lgmp.limits import Limits
from lgmp.wire.packets import JoinAnswer, ReadyAnswer, ReadyResponse
from lgmp.server.shell import LGMPServer

TIMEOUT = 5.0

#: Defaults for the in-process server: nothing times out by itself during a test, and
#: scripted players answering at machine speed (a 6-player game sends each player ~50
#: packets in well under a second) are not mistaken for a flood.
TEST_LIMITS = Limits(turn_timeout=0.0, lobby_idle=0.0, shutdown_grace=0.5, packet_burst=100_000, packet_rate=100_000.0,
                     # Every client here comes from 127.0.0.1: the per-source limits are off
                     # (tests/test_abuse.py tests them from several loopback addresses).
                     max_connections_per_source=0, max_unjoined_per_source=0, max_rooms_per_source=0,
                     failed_joins_per_minute=0)


@dataclass
class Net:
    server: LGMPServer
    port: int
    clients: list[LGMPClient] = field(default_factory=list)

    async def client(self) -> LGMPClient:
        client = await LGMPClient.connect("127.0.0.1", self.port)
        self.clients.append(client)
        return client

    async def host(self) -> tuple[LGMPClient, str]:
        client = await self.client()
        with trio.fail_after(TIMEOUT):
            code = await client.host_room()
        return client, code

    async def player(self, code: str, name: str, avatar: int) -> LGMPClient:
        """A seated, ready player (its own REDY 1 consumed; the REDY 0 after JOIN too)."""
        client = await self.client()
        with trio.fail_after(TIMEOUT):
            assert await client.join(code) is JoinAnswer.PLAYER
            assert await client.ready(name, avatar) is ReadyAnswer.ACCEPTED
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            with trio.move_on_after(1):
                await client.aclose()


async def recv(client: LGMPClient, timeout: float = TIMEOUT):
    """The next packet, or fail."""
    with trio.fail_after(timeout):
        return await client.receive()


async def recv_n(client: LGMPClient, n: int, timeout: float = TIMEOUT) -> list:
    return [await recv(client, timeout) for _ in range(n)]


async def silent(client: LGMPClient, wait: float = 0.1) -> None:
    """Assert that nothing arrives for ``wait`` seconds."""
    with trio.move_on_after(wait):
        packet = await client.receive()
        raise AssertionError(f"unexpected packet {packet!r}")


async def until_closed(client: LGMPClient, timeout: float = TIMEOUT) -> list:
    """Read until the server closes the connection; the packets read before that."""
    packets = []
    with trio.fail_after(timeout):
        while True:
            try:
                packets.append(await client.receive())
            except ConnectionClosed:
                return packets


async def drain_updates(client: LGMPClient, wait: float = 0.05) -> list:
    """Read every packet that arrives within ``wait`` (for settling lobby updates)."""
    packets = []
    while True:
        with trio.move_on_after(wait):
            packets.append(await client.receive())
            continue
        return packets


def update(avatars) -> ReadyResponse:
    return ReadyResponse(ReadyAnswer.UPDATE, tuple(avatars))


@pytest.fixture
async def lgmp_server(nursery):
    nets: list[Net] = []

    async def start(*, limits: Limits = TEST_LIMITS, seed: int | None = 1, **kwargs) -> Net:
        server = LGMPServer(limits=limits, seed=seed, **kwargs)
        port = await nursery.start(server.serve, "127.0.0.1", 0)
        net = Net(server, port)
        nets.append(net)
        return net

    yield start
    for net in nets:
        with trio.move_on_after(5):
            await net.server.shutdown()
        await net.aclose()


@pytest.fixture
async def net(lgmp_server) -> Net:
    return await lgmp_server()


@pytest.fixture
async def server(net) -> tuple[LGMPServer, int]:
    return net.server, net.port
