"""lgmp.clients.client: what it does with the server's bytes (good packets, bad bytes, the end)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from lgmp.clients.client import ConnectionClosed, LGMPClient
from lgmp.wire.codec import encode_all
from lgmp.wire.errors import RemoteProtocolError
from lgmp.wire.packets import CardDealt, GameUpdate, JoinResponse, Reset

TIMEOUT = 5.0
BOARD = (2,) + (0,) * 55


async def _client_reading(*chunks: bytes, close: bool = False) -> LGMPClient:
    """A client whose server side has sent ``chunks`` (and then closed, if ``close``)."""
    client_side, server_side = trio.testing.memory_stream_pair()
    for chunk in chunks:
        await server_side.send_all(chunk)
    if close:
        await server_side.aclose()
    return LGMPClient(client_side)


async def test_good_packets_before_bad_bytes_are_all_received_then_the_error():
    good = encode_all([JoinResponse(2), GameUpdate(1, 0, BOARD), CardDealt(3, 4)])
    client = await _client_reading(good + b"JUNK" + encode_all([Reset()]))
    with trio.fail_after(TIMEOUT):
        assert await client.receive() == JoinResponse(2)
        assert await client.receive() == GameUpdate(1, 0, BOARD)
        assert await client.receive() == CardDealt(3, 4)
        with pytest.raises(RemoteProtocolError, match="unknown tag") as info:
            await client.receive()
        assert (info.value.tag, info.value.offset) == ("JUNK", len(good))
        with pytest.raises(RemoteProtocolError):  # and it stays so: nothing after bad bytes frames
            await client.receive()
    assert client.last_game == GameUpdate(1, 0, BOARD)


async def test_a_wait_for_keeps_the_packets_it_skipped_even_when_bad_bytes_follow():
    client = await _client_reading(encode_all([JoinResponse(2), CardDealt(3, 4)]) + b"\xff")
    with trio.fail_after(TIMEOUT):
        assert await client.wait_for(CardDealt) == CardDealt(3, 4)
        assert await client.receive() == JoinResponse(2)
        with pytest.raises(RemoteProtocolError, match="begin no LGMP tag"):
            await client.receive()


async def test_the_server_closing_inside_a_packet_is_a_close_that_says_so():
    client = await _client_reading(encode_all([Reset()]) + b"GAME\x01", close=True)
    with trio.fail_after(TIMEOUT):
        assert await client.receive() == Reset()
        with pytest.raises(ConnectionClosed, match=r"stream ended inside a packet \(5 bytes of it\)"):
            await client.receive()
        with pytest.raises(ConnectionClosed):
            await client.receive()


async def test_a_clean_close_is_a_plain_close():
    client = await _client_reading(encode_all([Reset()]), close=True)
    with trio.fail_after(TIMEOUT):
        assert await client.receive() == Reset()
        with pytest.raises(ConnectionClosed, match="^the server closed the connection$"):
            await client.receive()
