"""The PROXY protocol v2 header: ``lgmp.server.proxy`` on its own, then a server listening
with ``proxy_protocol`` (its per-source limits count the address the header names)."""

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

# haproxy's documentation example, by hand: PROXY, TCP over IPv4, 192.0.2.1:56324 -> 198.51.100.2:1111
IPV4_HEADER = bytes.fromhex(
    "0d0a0d0a000d0a515549540a"  # signature
    "21"  # version 2, PROXY
    "11"  # INET, STREAM
    "000c"  # 12 bytes follow
    "c0000201" "c6336402"  # 192.0.2.1, 198.51.100.2
    "dc04" "0457"  # 56324, 1111
)


def test_parse_a_hand_written_ipv4_header():
    assert parse_proxy_v2(IPV4_HEADER + b"JOINHOST") == (28, ("192.0.2.1", 56324))


def test_build_gives_the_same_bytes():
    assert build_proxy_v2(("192.0.2.1", 56324), ("198.51.100.2", 1111)) == IPV4_HEADER


@pytest.mark.parametrize("src, dst", [
    (("203.0.113.7", 1), ("10.0.0.1", 65535)),
    (("2001:db8::7", 40000), ("2001:db8::1", 1111)),
    (("::1", 5), ("::1", 6)),
])
def test_round_trip(src, dst):
    header = build_proxy_v2(src, dst)
    assert parse_proxy_v2(header) == (len(header), src)
    assert parse_proxy_v2(header + b"rest") == (len(header), src)


def test_any_prefix_asks_for_more_bytes():
    header = build_proxy_v2(("2001:db8::7", 40000), ("2001:db8::1", 1111))
    for cut in range(len(header)):
        assert parse_proxy_v2(header[:cut]) is None


def test_local_and_unspec_and_unix_carry_no_address():
    local = SIGNATURE + bytes([0x20, 0x00]) + b"\x00\x00"
    assert parse_proxy_v2(local) == (16, None)
    unspec = SIGNATURE + bytes([0x21, 0x00]) + b"\x00\x03abc"  # PROXY, UNSPEC, 3 bytes of TLV to skip
    assert parse_proxy_v2(unspec) == (19, None)
    unix = SIGNATURE + bytes([0x21, 0x31]) + (216).to_bytes(2, "big") + b"\x00" * 216
    assert parse_proxy_v2(unix) == (232, None)


def test_tlvs_after_the_addresses_are_skipped():
    header = bytearray(IPV4_HEADER)
    header[14:16] = (12 + 7).to_bytes(2, "big")
    header += b"\x04\x00\x04abcd"  # a NOOP TLV
    assert parse_proxy_v2(bytes(header) + b"JOIN") == (35, ("192.0.2.1", 56324))


@pytest.mark.parametrize("data, why", [
    (b"JOINHOST", "signature"),
    (b"\r\n\r\n\x00\r\nX", "signature"),  # wrong from its 8th byte: known before the rest arrives
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 1111\r\n", "signature"),  # version 1 (text)
    (SIGNATURE + bytes([0x11, 0x11]) + b"\x00\x0c" + b"\x00" * 12, "version"),
    (SIGNATURE + bytes([0x22, 0x11]) + b"\x00\x0c" + b"\x00" * 12, "command"),
    (SIGNATURE + bytes([0x21, 0x41]) + b"\x00\x0c" + b"\x00" * 12, "family"),
    (SIGNATURE + bytes([0x21, 0x11]) + b"\x00\x04" + b"\x00" * 4, "too short"),
    (SIGNATURE + bytes([0x21, 0x21]) + b"\x00\x0c" + b"\x00" * 12, "too short"),
    (SIGNATURE + bytes([0x21, 0x11]) + (MAX_HEADER).to_bytes(2, "big"), "at most"),
])
def test_bad_headers_are_refused(data, why):
    with pytest.raises(ProxyHeaderError, match=why):
        parse_proxy_v2(data)


def test_build_refuses_mixed_families():
    with pytest.raises(ValueError):
        build_proxy_v2(("192.0.2.1", 1), ("::1", 2))


# --------------------------------------------------------------------------- a server behind a relay


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
