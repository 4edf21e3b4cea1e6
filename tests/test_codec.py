"""lgmp.wire.codec and lgmp.wire.packets: declarations, validation, framing, the pull decoder."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from construct import Bytes, GreedyBytes, Int8sb, Int8ub, Struct, this
from hypothesis import given, settings
from hypothesis import strategies as st

from lgmp.wire import codec
from lgmp.wire.codec import (
    DECLARATIONS,
    MAX_PACKET_SIZE,
    BadBytes,
    Declaration,
    Decoded,
    Decoder,
    decode_all,
    direction_of,
    encode,
    encode_all,
    tag_of,
)
from lgmp.wire.errors import LocalProtocolError, RemoteProtocolError
from lgmp.wire.packets import (
    CLIENT_PACKETS,
    SERVER_PACKETS,
    TEXT_MAX,
    CardAction,
    CardAnswer,
    CardDealt,
    CareerChoice,
    Direction,
    FinalResults,
    GameUpdate,
    JoinAnswer,
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
DECLARATION_OF = {d.packet_type: d for d in DECLARATIONS}

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
GOLDEN_IDS = [f"{d.value}-{type(p).__name__}-{w[4:6].hex()}" for d, p, w in HAND_GOLDEN]


def drain(decoder: Decoder) -> list[Decoded | BadBytes]:
    """Everything ``next_packet`` has to give now, up to and including a BadBytes."""
    out: list[Decoded | BadBytes] = []
    while (found := decoder.next_packet()) is not None:
        out.append(found)
        if isinstance(found, BadBytes):
            break
    return out


# --- one declaration per packet: parse, build and size together -------------------------------


def test_every_packet_is_declared_once_in_its_direction():
    assert [d.packet_type for d in DECLARATIONS if d.direction is C2S] == list(CLIENT_PACKETS)
    assert [d.packet_type for d in DECLARATIONS if d.direction is S2C] == list(SERVER_PACKETS)
    for direction in Direction:
        tags = [d.tag for d in DECLARATIONS if d.direction is direction]
        assert len(tags) == len(set(tags)), "one layout per tag per direction"


def test_every_packet_type_has_a_hand_golden():
    assert {type(p) for _, p, _ in HAND_GOLDEN} == set(CLIENT_PACKETS) | set(SERVER_PACKETS)


def check_declaration(direction: Direction, packet, wire: bytes) -> None:
    """Build, size and parse of one packet agree with each other and with ``wire``."""
    declaration = DECLARATION_OF[type(packet)]
    assert declaration.direction is direction is direction_of(packet)
    assert tag_of(packet).encode() == declaration.tag == wire[:4]
    # build
    assert encode(packet) == wire
    fields = {name: getattr(packet, name) for name in declaration.field_names}
    assert declaration.tag + declaration.body.build(fields) == wire, "compiled and interpreted build differ"
    # size: exact, decided only by the packet's own bytes, never claimed early
    assert declaration.frame_size(wire, 0, len(wire)) == len(wire)
    assert declaration.frame_size(wire + b"JUNK" * 3, 0, len(wire) + 12) == len(wire)
    assert declaration.frame_size(b"xx" + wire, 2, len(wire) + 2) == len(wire)
    for cut in range(len(wire)):
        claimed = declaration.frame_size(wire[:cut], 0, cut)
        assert claimed is None or claimed == len(wire)
    assert declaration.fixed_size in (None, len(wire))
    assert len(wire) <= declaration.largest <= MAX_PACKET_SIZE[direction]
    # parse, compiled and interpreted
    assert decode_all(direction, wire) == [packet]
    assert decode_all(direction, wire, compiled=False) == [packet]


@pytest.mark.parametrize("direction,packet,wire", HAND_GOLDEN, ids=GOLDEN_IDS)
def test_hand_golden_parse_build_and_size(direction, packet, wire):
    check_declaration(direction, packet, wire)


@settings(max_examples=150, deadline=None)  # one check sizes every prefix of up to 1,552 bytes
@given(client_packets)
def test_client_packets_parse_build_and_size(packet):
    check_declaration(C2S, packet, encode(packet))


@settings(max_examples=150, deadline=None)  # one check sizes every prefix of up to 1,552 bytes
@given(server_packets)
def test_server_packets_parse_build_and_size(packet):
    check_declaration(S2C, packet, encode(packet))


def test_fixed_sizes_are_derived_for_the_fixed_packets_only():
    fixed = {(d.direction, d.packet_type): d.fixed_size for d in DECLARATIONS}
    assert fixed == {
        (C2S, JoinRequest): 8,
        (C2S, ReadyRequest): None,
        (C2S, StartGame): 4,
        (C2S, Spin): 5,
        (C2S, CardAnswer): 6,  # int8 or uint8 value: one byte either way
        (C2S, CareerChoice): None,
        (S2C, JoinResponse): None,
        (S2C, ReadyResponse): 11,
        (S2C, GameUpdate): 62,
        (S2C, CardDealt): 6,
        (S2C, FinalResults): None,
        (S2C, Reset): 4,
    }


def test_largest_packets_are_the_advertised_maximum():
    assert len(encode(CareerChoice(255, "c" * TEXT_MAX, 255))) == MAX_PACKET_SIZE[C2S] == 262
    assert len(encode(FinalResults((0,) * 6, ("c" * TEXT_MAX,) * 6, (0,) * 6))) == MAX_PACKET_SIZE[S2C] == 1552
    # The declarations' uint8 prefix and the packets' own text limit are the same limit.
    assert DECLARATION_OF[CareerChoice].largest == 4 + 1 + (1 + TEXT_MAX) + 1


def test_a_declaration_must_name_the_class_fields():
    with pytest.raises(TypeError, match="not the class's fields"):
        Declaration(Spin, C2S, b"SPIN", Struct("spin" / Int8ub))
    with pytest.raises(TypeError, match="not the class's fields"):
        Declaration(CardDealt, S2C, b"CARD", Struct("number" / Int8ub, "kind" / Int8ub))


@dataclass(frozen=True)
class _Blob:
    data: bytes


@dataclass(frozen=True)
class _Sized:
    length: int
    data: bytes


@dataclass(frozen=True)
class _LateSized:
    data: bytes
    length: int


@pytest.mark.parametrize(
    "packet_type,body",
    [
        (_Blob, Struct("data" / GreedyBytes)),  # runs to the end of the stream: no frame
        (_Sized, Struct("length" / Int8ub, "data" / Bytes(lambda ctx: ctx.length))),  # a length the framer cannot follow
        (_Sized, Struct("length" / Int8sb, "data" / Bytes(this.length))),  # a signed length
        (_LateSized, Struct("data" / Bytes(this.length), "length" / Int8ub)),  # a length that comes after its bytes
        (_Sized, Struct("length" / Int8ub, "data" / Bytes(this.length * 2))),  # an expression, not the number
    ],
    ids=["greedy", "lambda-length", "signed-length", "late-length", "length-expression"],
)
def test_a_body_the_framer_cannot_size_is_refused_at_declaration(packet_type, body):
    with pytest.raises(TypeError, match="cannot size"):
        Declaration(packet_type, C2S, b"TEST", body)


def test_compiled_results_hold_exactly_the_fields():
    """The compiled parser passes a Struct's values to the class in order: nothing else may be in them."""
    for direction, packet, wire in HAND_GOLDEN:
        declaration = DECLARATION_OF[type(packet)]
        parsed = declaration.body.compile().parse(wire[4:])
        assert list(parsed) == list(declaration.field_names)


# --- packets are validated when built ----------------------------------------------------------


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: JoinRequest("ABC"), "JoinRequest.room"),
        (lambda: JoinRequest("ABCDE"), "JoinRequest.room"),
        (lambda: JoinRequest("ÀBCD"), "JoinRequest.room"),
        (lambda: ReadyRequest("n" * 256, 1), "ReadyRequest.name"),
        (lambda: ReadyRequest("José", 1), "ReadyRequest.name"),
        (lambda: ReadyRequest("Ann", 256), "ReadyRequest.avatar"),
        (lambda: ReadyRequest("Ann", -1), "ReadyRequest.avatar"),
        (lambda: ReadyRequest(b"Ann", 1), "ReadyRequest.name"),
        (lambda: Spin(300), "Spin.number"),
        (lambda: Spin("4"), "Spin.number"),
        (lambda: Spin(True), "Spin.number"),
        (lambda: Spin(4.0), "Spin.number"),
        (lambda: CardAnswer(1, 128), "CardAnswer.value"),
        (lambda: CardAnswer(1, -129), "CardAnswer.value"),
        (lambda: CardAnswer(2, -1), "CardAnswer.value"),
        (lambda: CardAnswer(3, 256), "CardAnswer.value"),
        (lambda: CardAnswer(-1, 0), "CardAnswer.action"),
        (lambda: CareerChoice(1, "c" * 256, 1), "CareerChoice.career"),
        (lambda: CareerChoice(1, "ok", 256), "CareerChoice.salary"),
        (lambda: CareerChoice(256, "ok", 1), "CareerChoice.field"),
        (lambda: JoinResponse(1, None), "JoinResponse.room"),
        (lambda: JoinResponse(1, "ABC"), "JoinResponse.room"),
        (lambda: JoinResponse(2, "ABCD"), "JoinResponse.room"),
        (lambda: JoinResponse(256), "JoinResponse.response"),
        (lambda: ReadyResponse(1, (0,) * 5), "ReadyResponse.avatars"),
        (lambda: ReadyResponse(1, [0] * 6), "ReadyResponse.avatars"),
        (lambda: ReadyResponse(1, (0, 0, 0, 0, 0, 999)), r"ReadyResponse.avatars\[5\]"),
        (lambda: ReadyResponse(1, (0, 0, "1", 0, 0, 0)), r"ReadyResponse.avatars\[2\]"),
        (lambda: GameUpdate(1, 0, (0,) * 55), "GameUpdate.occupancy"),
        (lambda: GameUpdate(256, 0, EMPTY_BOARD), "GameUpdate.turn"),
        (lambda: GameUpdate(1, -1, EMPTY_BOARD), "GameUpdate.space"),
        (lambda: CardDealt(1, 256), "CardDealt.number"),
        (lambda: CardDealt(None, 1), "CardDealt.kind"),
        (lambda: FinalResults((0,) * 6, ("",) * 5, (0,) * 6), "FinalResults.careers"),
        (lambda: FinalResults((0,) * 6, ("",) * 5 + ("ü",), (0,) * 6), r"FinalResults.careers\[5\]"),
        (lambda: FinalResults((0,) * 6, ("",) * 5 + ("x" * 256,), (0,) * 6), r"FinalResults.careers\[5\]"),
        (lambda: FinalResults((0,) * 7, ("",) * 6, (0,) * 6), "FinalResults.places"),
        (lambda: FinalResults((0,) * 6, ("",) * 6, (0,) * 5 + (256,)), r"FinalResults.salaries\[5\]"),
    ],
)
def test_a_bad_packet_fails_where_it_is_built_naming_the_field(build, field):
    with pytest.raises(LocalProtocolError, match=field):
        build()


def test_the_edges_of_every_range_are_accepted():
    for packet in (
        CardAnswer(CardAction.MOVE, -128),
        CardAnswer(CardAction.MOVE, 127),
        CardAnswer(CardAction.TOKEN, 255),
        CardAnswer(0, 0),
        Spin(0),
        Spin(255),
        ReadyRequest("", 0),
        ReadyRequest("n" * TEXT_MAX, 255),
        ReadyRequest("J\udcc3\udca9", 1),  # a peer's non-ASCII bytes, as decoded
        JoinResponse(JoinAnswer.HOST, "QZKW"),  # IntEnum members are ints
        JoinResponse(JoinAnswer.ROOM_NOT_FOUND),
        GameUpdate(0, 255, (255,) * 56),
    ):
        (decoded,) = decode_all(direction_of(packet), encode(packet))
        assert decoded == packet


def test_encode_refuses_non_packets():
    with pytest.raises(LocalProtocolError, match="not an LGMP packet"):
        encode(object())


def test_non_ascii_text_survives_a_round_trip():
    wire = b"REDY\x04J\xc3\xa9\x21\x01"
    (packet,) = decode_all(C2S, wire)
    assert packet.name == "J\udcc3\udca9!"
    assert encode(packet) == wire


# --- the pull decoder --------------------------------------------------------------------------


def test_receive_data_takes_any_buffer():
    for kind in (bytes, bytearray, memoryview):
        decoder = Decoder(C2S)
        decoder.receive_data(kind(b"SPIN\x04RE"))
        decoder.receive_data(kind(b"DY\x01A\x02"))
        assert [f.packet for f in drain(decoder)] == [Spin(4), ReadyRequest("A", 2)]


@settings(max_examples=100, deadline=None)
@given(st.lists(client_packets, max_size=8), st.data())
def test_take_packet_gives_next_packets_packets_under_any_chunking(packets, data):
    wire = b"".join(encode(p) for p in packets) + data.draw(st.sampled_from([b"", b"SPI", b"XXXX"]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    with_offsets, bare = Decoder(C2S), Decoder(C2S)
    taken, taken_bare = [], []
    for start, stop in zip([0, *cuts], [*cuts, len(wire)]):
        with_offsets.receive_data(wire[start:stop])
        bare.receive_data(wire[start:stop])
        taken += drain(with_offsets)
        while (found := bare.take_packet()) is not None:
            taken_bare.append(found)
            if isinstance(found, BadBytes):
                break
    assert [f if isinstance(f, BadBytes) else f.packet for f in taken] == taken_bare
    assert [f.packet for f in taken if not isinstance(f, BadBytes)] == packets
    assert (bare.offset, bare.buffered, bare.failed) == (with_offsets.offset, with_offsets.buffered, with_offsets.failed)


def test_partial_packet_waits():
    decoder = Decoder(C2S)
    assert decoder.next_packet() is None
    decoder.receive_data(b"REDY\x05Ann")
    assert decoder.next_packet() is None
    assert (decoder.buffered, decoder.offset) == (8, 0)
    decoder.receive_data(b"ie\x01SP")
    assert decoder.next_packet() == Decoded(ReadyRequest("Annie", 1), 0, 11)
    assert decoder.next_packet() is None
    assert (decoder.buffered, decoder.offset) == (2, 11)
    decoder.receive_data(b"IN\x04")
    assert decoder.next_packet() == Decoded(Spin(4), 11, 5)
    assert (decoder.buffered, decoder.offset) == (0, 16)
    assert decoder.next_packet() is None
    assert decoder.end_of_stream() is None
    assert decoder.failed is None


def test_a_server_join_waits_for_its_answer_byte():
    """JOIN's size depends on its first body byte: 5 bytes, or 9 for the host's answer."""
    decoder = Decoder(S2C)
    decoder.receive_data(b"JOIN")
    assert decoder.next_packet() is None
    decoder.receive_data(b"\x01QZ")
    assert decoder.next_packet() is None
    decoder.receive_data(b"KWJOIN\x02")
    assert [f.packet for f in drain(decoder)] == [JoinResponse(1, "QZKW"), JoinResponse(2)]


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
def test_bad_tags_are_reported_at_their_first_byte(direction, data, reason):
    decoder = Decoder(direction)
    decoder.receive_data(data)
    bad = decoder.next_packet()
    assert isinstance(bad, BadBytes)
    assert reason in bad.reason
    assert bad.offset == 0
    assert bad.tag == repr(data[:4])[2:-1]


def test_good_packets_come_out_before_the_bad_bytes_and_the_failure_sticks():
    decoder = Decoder(C2S)
    decoder.receive_data(b"STRT")
    assert decoder.next_packet() == Decoded(StartGame(), 0, 4)
    decoder.receive_data(b"SPIN\x02CARD\x01\xfeJUNKJUNK")
    assert decoder.next_packet() == Decoded(Spin(2), 4, 5)
    assert decoder.next_packet() == Decoded(CardAnswer(1, -2), 9, 6)
    bad = decoder.next_packet()
    assert bad == BadBytes("unknown tag for c2s", "JUNK", 15)
    assert decoder.failed is bad
    assert decoder.offset == 15
    # Sticky: whatever comes later, even a good packet, the answer stays the same.
    decoder.receive_data(b"STRT")
    assert decoder.next_packet() is bad
    assert decoder.end_of_stream() is bad
    assert decoder.offset == 15


def test_bad_bytes_as_an_exception():
    error = BadBytes("unknown tag for c2s", "JUNK", 15).error()
    assert isinstance(error, RemoteProtocolError)
    assert (error.reason, error.tag, error.offset) == ("unknown tag for c2s", "JUNK", 15)
    assert str(error) == "tag JUNK, stream offset 15: unknown tag for c2s"


@pytest.mark.parametrize("direction,packet,wire", HAND_GOLDEN, ids=GOLDEN_IDS)
def test_a_stream_cut_inside_a_packet_is_bad_at_its_end(direction, packet, wire):
    for cut in range(1, len(wire)):
        decoder = Decoder(direction)
        decoder.receive_data(b"RSET" + wire[:cut] if direction is S2C else b"STRT" + wire[:cut])
        assert isinstance(decoder.next_packet(), Decoded)
        assert decoder.next_packet() is None
        bad = decoder.end_of_stream()
        assert bad == BadBytes(f"stream ended inside a packet ({cut} bytes of it)", repr(wire[:min(cut, 4)])[2:-1], 4)
        assert decoder.next_packet() is bad
        with pytest.raises(RemoteProtocolError, match="ended inside a packet"):
            decode_all(direction, wire[:cut])


def test_end_of_stream_with_whole_packets_waiting_is_a_caller_mistake():
    decoder = Decoder(C2S)
    decoder.receive_data(b"STRTSPIN\x03")
    with pytest.raises(RuntimeError, match="next_packet"):
        decoder.end_of_stream()
    assert [f.packet for f in drain(decoder)] == [StartGame(), Spin(3)]  # nothing lost
    assert decoder.end_of_stream() is None


def test_end_of_stream_reports_undetected_bad_bytes_as_bad():
    decoder = Decoder(C2S)
    decoder.receive_data(b"XXXX")
    assert decoder.end_of_stream() == BadBytes("unknown tag for c2s", "XXXX", 0)


def test_buffer_is_bounded_by_largest_packet():
    for direction in (C2S, S2C):
        limit = MAX_PACKET_SIZE[direction]
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
        pos, count = 0, 0
        while pos < len(wire):
            step = rng.randint(1, 700)
            decoder.receive_data(wire[pos : pos + step])
            count += len(drain(decoder))
            assert decoder.buffered < limit
            assert decoder.offset + decoder.buffered == min(pos + step, len(wire))
            pos += step
        assert count == 40


def test_garbage_is_cut_at_the_first_bad_byte():
    garbage = random.Random(7).randbytes(1_000_000)
    decoder = Decoder(C2S)
    decoder.receive_data(b"STRT" + garbage)
    found = drain(decoder)
    assert found[0] == Decoded(StartGame(), 0, 4)
    assert len(found) == 2 and isinstance(found[1], BadBytes)
    assert found[1].offset <= 4 + 3


def test_encode_and_decode_leave_no_cyclic_garbage():
    """Every temporary is freed by reference counting: the cycle collector has nothing to do.

    (construct's own parse/build contexts refer to themselves; under load that
    garbage drove long full collections, so the codec avoids them.)
    """
    import gc

    streams = {d: encode_all(p for pd, p, _ in HAND_GOLDEN if pd is d) for d in (C2S, S2C)}
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            for direction, stream in streams.items():
                decoder = Decoder(direction)
                decoder.receive_data(stream)
                assert len(drain(decoder)) == sum(1 for d, _, _ in HAND_GOLDEN if d is direction)
            for _, packet, _ in HAND_GOLDEN:
                encode(packet)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_codec_module_exports():
    assert codec.MAX_PACKET_SIZE is MAX_PACKET_SIZE
    assert set(codec.__all__) <= set(dir(codec))
