"""lgmp.wire.codec: layouts, round-trips, framing under any chunking, and bad input."""

from __future__ import annotations

import random

import pytest
from construct import SizeofError
from hypothesis import given, settings
from hypothesis import strategies as st

from lgmp.wire import codec
from lgmp.wire.codec import Decoder, decode_all, encode, encode_all
from lgmp.wire.errors import LocalProtocolError, RemoteProtocolError
from lgmp.wire.packets import (
    CLIENT_PACKETS,
    SERVER_PACKETS,
    CardAnswer,
    CardDealt,
    CareerChoice,
    Direction,
    FinalResults,
    GameUpdate,
    JoinRequest,
    JoinResponse,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from tests.strategies import client_packets, server_packets

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
EMPTY_BOARD = (0,) * 56

# One hand-computed example per packet, independent of PROTOCOL.md.
HAND_GOLDEN = [
    (C2S, JoinRequest("HOST"), b"JOINHOST"),
    (C2S, ReadyRequest("Ann", 2), b"REDY\x03Ann\x02"),
    (C2S, StartGame(), b"STRT"),
    (C2S, Spin(6), b"SPIN\x06"),
    (C2S, CardAnswer(1, -3), b"CARD\x01\xfd"),
    (C2S, CardAnswer(2, 6), b"CARD\x02\x06"),
    (C2S, CareerChoice(3, "System Architect", 105), b"CRER\x03\x10System Architect\x69"),
    (S2C, JoinResponse(1, "QZKW"), b"JOIN\x01QZKW"),
    (S2C, JoinResponse(4), b"JOIN\x04"),
    (S2C, ReadyResponse(0, (1, 0, 3, 0, 0, 0)), b"REDY\x00\x01\x00\x03\x00\x00\x00"),
    (S2C, GameUpdate(2, 3, (1, 1) + (0,) * 54), b"GAME\x02\x03\x01\x01" + bytes(54)),
    (S2C, CardDealt(1, 12), b"CARD\x01\x0c"),
    (
        S2C,
        FinalResults((2, 1, 0, 0, 0, 0), ("Media Planner", "Creative Director", "", "", "", ""), (54, 132, 0, 0, 0, 0)),
        b"FINL\x02\x01\x00\x00\x00\x00\x0dMedia Planner\x11Creative Director\x00\x00\x00\x00\x36\x84\x00\x00\x00\x00",
    ),
    (S2C, Reset(), b"RSET"),
]


@pytest.mark.parametrize("direction,packet,wire", HAND_GOLDEN, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("compiled", [True, False])
def test_hand_golden_both_ways(direction, packet, wire, compiled):
    assert encode(packet) == wire
    assert decode_all(direction, wire, compiled=compiled) == [packet]


def test_every_packet_type_has_a_hand_golden():
    assert {type(p) for _, p, _ in HAND_GOLDEN} == set(CLIENT_PACKETS) | set(SERVER_PACKETS)


@pytest.mark.parametrize(
    "bodies",
    [codec.CLIENT_BODIES, codec.SERVER_BODIES],
    ids=["c2s", "s2c"],
)
def test_compiled_layouts_match_interpreted(bodies):
    """As construct's own tests do: parse, build and sizeof agree between the two."""
    for direction, packet, wire in HAND_GOLDEN:
        tag = wire[:4]
        if bodies is not (codec.CLIENT_BODIES if direction is C2S else codec.SERVER_BODIES):
            continue
        body = bodies[tag]
        compiled = body.compile()
        raw = wire[4:]
        assert compiled.parse(raw) == body.parse(raw)
        assert compiled.build(body.parse(raw)) == body.build(body.parse(raw)) == raw
        try:
            size = body.sizeof()
        except SizeofError:
            continue  # variable-size layout
        assert size == len(raw)


@given(client_packets)
def test_client_round_trip(packet):
    wire = encode(packet)
    assert decode_all(C2S, wire) == [packet]
    assert decode_all(C2S, wire, compiled=False) == [packet]


@given(server_packets)
def test_server_round_trip(packet):
    wire = encode(packet)
    assert decode_all(S2C, wire) == [packet]
    assert decode_all(S2C, wire, compiled=False) == [packet]


@given(st.binary(max_size=300))
def test_valid_bytes_reencode_exactly(data):
    """encode(decode(b)) == b for every byte string that decodes."""
    for direction in (C2S, S2C):
        try:
            packets = decode_all(direction, data)
        except RemoteProtocolError:
            continue
        assert encode_all(packets) == data


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=60)
@given(st.lists(client_packets, max_size=12), st.lists(st.integers(0, 10_000), max_size=20))
def test_client_stream_any_chunking(packets, cuts):
    wire = encode_all(packets)
    whole = Decoder(C2S).feed(wire)
    decoder = Decoder(C2S)
    single = [p for i in range(len(wire)) for p in decoder.feed(wire[i : i + 1])]
    decoder = Decoder(C2S)
    split = [p for chunk in _chunks(wire, cuts) for p in decoder.feed(chunk)]
    assert whole == single == split == packets
    assert decoder.buffered == 0


@settings(max_examples=60)
@given(st.lists(server_packets, max_size=8), st.lists(st.integers(0, 20_000), max_size=20))
def test_server_stream_any_chunking(packets, cuts):
    wire = encode_all(packets)
    decoder = Decoder(S2C)
    single = [p for i in range(len(wire)) for p in decoder.feed(wire[i : i + 1])]
    decoder = Decoder(S2C)
    split = [p for chunk in _chunks(wire, cuts) for p in decoder.feed(chunk)]
    assert Decoder(S2C).feed(wire) == single == split == packets


def test_partial_packet_waits():
    decoder = Decoder(C2S)
    assert decoder.feed(b"REDY\x05Ann") == []
    assert decoder.buffered == 8
    assert decoder.feed(b"ie\x01SP") == [ReadyRequest("Annie", 1)]
    assert decoder.feed(b"IN\x04") == [Spin(4)]
    assert decoder.offset == 11 + 5


@pytest.mark.parametrize(
    "direction,data,reason",
    [
        (C2S, b"XXXX", "unknown tag"),
        (C2S, b"Z", "begin no LGMP tag"),
        (C2S, b"JOX", "begin no LGMP tag"),
        (C2S, b"GAME" + bytes(58), "unknown tag"),  # a server tag sent by a client
        (C2S, b"RSET", "unknown tag"),
        (S2C, b"STRT", "unknown tag"),  # a client tag sent by a server
        (S2C, b"SPIN\x01", "unknown tag"),
        (S2C, b"CRER", "unknown tag"),
        (C2S, b"join" + b"ABCD", "unknown tag"),  # tags are case-sensitive
    ],
)
def test_bad_tags_raise_protocol_error(direction, data, reason):
    with pytest.raises(RemoteProtocolError, match=reason) as info:
        Decoder(direction).feed(data)
    assert info.value.offset == 0


def test_error_names_tag_and_offset_and_keeps_earlier_packets():
    decoder = Decoder(C2S)
    decoder.feed(b"STRT")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.feed(b"SPIN\x02JUNKJUNK")
    assert info.value.tag == "JUNK"
    assert info.value.offset == 9
    assert info.value.packets == [Spin(2)]
    with pytest.raises(RemoteProtocolError):  # stays failed
        decoder.feed(b"STRT")


@pytest.mark.parametrize("direction,packet", [(d, p) for d, p, _ in HAND_GOLDEN])
def test_truncated_stream_raises_at_end(direction, packet):
    wire = encode(packet)
    for cut in range(1, len(wire)):
        decoder = Decoder(direction)
        assert decoder.feed(wire[:cut]) == []
        with pytest.raises(RemoteProtocolError, match="ended inside a packet"):
            decoder.end_of_stream()


def test_buffer_is_bounded_by_largest_packet():
    for direction in (C2S, S2C):
        limit = codec.MAX_PACKET_SIZE[direction]
        decoder = Decoder(direction)
        rng = random.Random(1)
        wire = b"".join(
            encode(p)
            for p in (
                [CareerChoice(1, "x" * 255, 1), ReadyRequest("y" * 255, 1)]
                if direction is C2S
                else [FinalResults((0,) * 6, ("z" * 255,) * 6, (0,) * 6), GameUpdate(0, 0, EMPTY_BOARD)]
            )
            * 20
        )
        pos = 0
        while pos < len(wire):
            step = rng.randint(1, 700)
            decoder.feed(wire[pos : pos + step])
            assert decoder.buffered < limit
            pos += step


def test_largest_packets_are_the_advertised_maximum():
    assert len(encode(CareerChoice(255, "c" * 255, 255))) == codec.MAX_PACKET_SIZE[C2S] == 262
    assert len(encode(FinalResults((0,) * 6, ("c" * 255,) * 6, (0,) * 6))) == codec.MAX_PACKET_SIZE[S2C] == 1552


def test_garbage_is_cut_at_the_first_bad_byte():
    garbage = random.Random(7).randbytes(1_000_000)
    with pytest.raises(RemoteProtocolError) as info:
        Decoder(C2S).feed(b"STRT" + garbage)
    assert info.value.offset <= 4 + 3
    assert info.value.packets == [StartGame()]


@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_raise_protocol_error(data):
    for direction in (C2S, S2C):
        for compiled in (True, False):
            try:
                Decoder(direction, compiled=compiled).feed(data)
            except RemoteProtocolError:
                pass


@pytest.mark.parametrize(
    "packet,field",
    [
        (JoinRequest("ABC"), "room"),
        (JoinRequest("ABCDE"), "room"),
        (JoinRequest("ÀBCD"), "room"),
        (ReadyRequest("n" * 256, 1), "name"),
        (ReadyRequest("José", 1), "name"),
        (ReadyRequest("Ann", 256), "avatar"),
        (ReadyRequest("Ann", -1), "avatar"),
        (ReadyRequest(b"Ann", 1), "name"),
        (Spin(300), "number"),
        (Spin("4"), "number"),
        (CardAnswer(1, 128), "value"),
        (CardAnswer(1, -129), "value"),
        (CardAnswer(2, -1), "value"),
        (CardAnswer(3, 256), "value"),
        (CareerChoice(1, "c" * 256, 1), "career"),
        (CareerChoice(1, "ok", 256), "salary"),
        (JoinResponse(1, None), "room"),
        (JoinResponse(2, "ABCD"), "room"),
        (ReadyResponse(1, (0,) * 5), "avatars"),
        (ReadyResponse(1, (0, 0, 0, 0, 0, 999)), "avatars"),
        (GameUpdate(1, 0, (0,) * 55), "occupancy"),
        (GameUpdate(256, 0, EMPTY_BOARD), "turn"),
        (CardDealt(1, 256), "number"),
        (FinalResults((0,) * 6, ("",) * 5, (0,) * 6), "careers"),
        (FinalResults((0,) * 6, ("",) * 5 + ("ü",), (0,) * 6), "careers"),
        (FinalResults((0,) * 7, ("",) * 6, (0,) * 6), "places"),
    ],
)
def test_encode_validates_with_a_clear_error(packet, field):
    with pytest.raises(LocalProtocolError, match=field):
        encode(packet)


def test_encode_refuses_non_packets():
    with pytest.raises(LocalProtocolError, match="not an LGMP packet"):
        encode(object())


def test_non_ascii_text_survives_a_round_trip():
    wire = b"REDY\x04J\xc3\xa9\x21\x01"
    (packet,) = decode_all(C2S, wire)
    assert packet.name == "J\udcc3\udca9!"
    assert encode(packet) == wire


def test_encode_and_decode_leave_no_cyclic_garbage():
    """Every temporary is freed by reference counting: the cycle collector has nothing to do.

    (construct's own parse/build contexts refer to themselves; under load that
    garbage drove long full collections, so the codec avoids them.)
    """
    import gc

    stream_c2s = encode_all(p for d, p, _ in HAND_GOLDEN if d is C2S)
    stream_s2c = encode_all(p for d, p, _ in HAND_GOLDEN if d is S2C)
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            Decoder(C2S).feed(stream_c2s)
            Decoder(S2C).feed(stream_s2c)
            for _, packet, _ in HAND_GOLDEN:
                encode(packet)
        assert gc.collect() == 0
    finally:
        gc.enable()
