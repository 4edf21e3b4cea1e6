"""``lgmp.server.proxy``: the PROXY protocol v2 header a relay sends its owner."""

from __future__ import annotations

import pytest
import trio

from lgmp.clients.client import LGMPClient
from lgmp.limits import Limits
from lgmp.server.proxy import MAX_HEADER, SIGNATURE, ProxyHeaderError, build_proxy_v2, parse_proxy_v2
from lgmp.server.shell import LGMPServer
from lgmp.wire.codec import encode
from lgmp.wire.packets import JoinAnswer, JoinRequest
from tests.conftest import recv, until_closed

# The spec's layout, byte by byte: TCP over IPv4 from 192.0.2.7:51000 to 127.0.0.1:1111.
IPV4_HEADER = bytes.fromhex(
    "0d0a0d0a000d0a515549540a"  # signature
    "21"  # version 2, command PROXY
    "11"  # TCP over IPv4
    "000c"  # 12 bytes follow
    "c0000207" "7f000001"  # source, destination address
    "c738" "0457"  # source port 51000, destination port 1111
)


def test_ipv4_header_matches_the_specification_byte_for_byte():
    assert build_proxy_v2(("192.0.2.7", 51000), ("127.0.0.1", 1111)) == IPV4_HEADER
    assert parse_proxy_v2(IPV4_HEADER + b"JOIN") == (28, ("192.0.2.7", 51000))


@pytest.mark.parametrize(
    "src,dst,expected",
    [
        (("2001:db8::1", 443), ("::1", 1111), ("2001:db8::1", 443)),
        (("10.1.2.3", 7), ("::1", 1111), ("10.1.2.3", 7)),  # mixed: sent IPv4-mapped, read back as IPv4
    ],
)
def test_ipv6_round_trip(src, dst, expected):
    header = build_proxy_v2(src, dst)
    assert header[13] == 0x21 and len(header) == 16 + 36
    assert parse_proxy_v2(header) == (len(header), expected)


def test_every_prefix_of_a_header_asks_for_more_bytes():
    for size in range(len(IPV4_HEADER)):
        assert parse_proxy_v2(IPV4_HEADER[:size]) is None


def test_local_command_and_unspecified_family_carry_no_address_and_tlvs_are_skipped():
    local = SIGNATURE + bytes([0x20, 0x00]) + (0).to_bytes(2, "big")
    assert parse_proxy_v2(local + b"JOIN") == (16, None)
    with_tlv = SIGNATURE + bytes([0x21, 0x11]) + (12 + 5).to_bytes(2, "big") + IPV4_HEADER[16:] + b"\x04\x00\x02hi"
    assert parse_proxy_v2(with_tlv) == (33, ("192.0.2.7", 51000))
    unix = SIGNATURE + bytes([0x21, 0x31]) + (216).to_bytes(2, "big") + bytes(216)
    assert parse_proxy_v2(unix) == (232, None)


@pytest.mark.parametrize(
    "data",
    [
        b"JOINHOST",  # LGMP, not a header
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4),  # a bad signature
        SIGNATURE + bytes([0x11, 0x11, 0, 12]) + bytes(12),  # version 1
        SIGNATURE + bytes([0x22, 0x11, 0, 12]) + bytes(12),  # unknown command
        SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),  # IPv4 with a short address block
        SIGNATURE + bytes([0x21, 0x11]) + (MAX_HEADER).to_bytes(2, "big"),  # longer than we wait for
    ],
)
def test_invalid_headers_are_refused(data):
    with pytest.raises(ProxyHeaderError):
        parse_proxy_v2(data)


# --------------------------------------------------------------------------- lgmp serve --proxy-protocol


async def proxied(port: int, client: tuple[str, int] | None, *, chunks: int = 1) -> LGMPClient:
    """A connection as a relay would open it: the header first (LOCAL when ``client`` is None)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    header = build_proxy_v2(client, ("127.0.0.1", port)) if client else SIGNATURE + b"\x20\x00\x00\x00"
    step = max(1, len(header) // chunks)
    for i in range(0, len(header), step):
        await stream.send_all(header[i:i + step])
        await trio.sleep(0.01)
    return LGMPClient(stream)


async def test_per_source_limits_count_the_address_in_the_header(nursery):
    server = LGMPServer(limits=Limits(max_rooms_per_source=1), seed=1)
    port = await nursery.start(lambda task_status: server.serve("127.0.0.1", 0, proxy_protocol=True, task_status=task_status))
    first = await proxied(port, ("203.0.113.7", 5000), chunks=5)  # a header in pieces
    assert len(await first.host_room()) == 4
    second = await proxied(port, ("203.0.113.7", 5001))  # same client address, another relay connection
    await second.send(JoinRequest("HOST"))
    assert (await recv(second)).response == JoinAnswer.LOBBY_FULL
    third = await proxied(port, ("198.51.100.9", 5000))
    assert len(await third.host_room()) == 4
    assert server.hub.sources.holds("203.0.113.7") == (2, 1, 1)
    # A relay's own health check (LOCAL) counts as the relay's address.
    check = await proxied(port, None)
    assert len(await check.host_room()) == 4
    assert server.hub.sources.holds("127.0.0.1") == (1, 0, 1)
    for client in (first, second, third, check):
        await client.aclose()


async def test_header_and_first_packet_in_one_segment(nursery):
    server = LGMPServer(limits=Limits(), seed=1)
    port = await nursery.start(lambda task_status: server.serve("127.0.0.1", 0, proxy_protocol=True, task_status=task_status))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(build_proxy_v2(("192.0.2.44", 9), ("127.0.0.1", port)) + encode(JoinRequest("HOST")))
    client = LGMPClient(stream)
    assert (await recv(client)).response == JoinAnswer.HOST
    assert server.hub.sources.holds("192.0.2.44") == (1, 0, 1)
    await client.aclose()


async def test_a_connection_without_a_header_is_closed(nursery):
    server = LGMPServer(limits=Limits(join_timeout=1.0), seed=1)
    port = await nursery.start(lambda task_status: server.serve("127.0.0.1", 0, proxy_protocol=True, task_status=task_status))
    bare = LGMPClient(await trio.open_tcp_stream("127.0.0.1", port))
    await bare.send(JoinRequest("HOST"))  # LGMP where the header must be
    assert await until_closed(bare) == []
    silent = LGMPClient(await trio.open_tcp_stream("127.0.0.1", port))
    assert await until_closed(silent, timeout=3) == []  # no header within join_timeout
    assert server.hub.connection_count == 0 and server._handshakes == 0
