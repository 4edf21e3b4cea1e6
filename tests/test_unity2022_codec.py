"""lgmp.wire.unity2022: the Unity client's 2022 dialect, declared beside v1.0 in the codec.

Every 2022 packet is checked like a v1.0 one (build, size, parse, compiled and
interpreted agree); the dialect shares v1.0's declarations where the bytes are the
same, and v1.0's bytes and tables do not change because another dialect exists.
"""

from __future__ import annotations

import pytest
from construct import Int8ub, Struct
from hypothesis import given, settings
from hypothesis import strategies as st

from lgmp.wire import codec
from lgmp.wire.codec import V1_0, BadBytes, Declaration, Decoded, Decoder, decode_all, direction_of, encode, tag_of
from lgmp.wire.dialects import DIALECTS, dialect_named
from lgmp.wire.errors import LocalProtocolError, RemoteProtocolError
from lgmp.wire.packets import (
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
from lgmp.wire.unity2022 import (
    CLIENT_PACKETS,
    SERVER_PACKETS,
    UNITY_2022,
    CardUpdate,
    EndTurn,
    HostUpdate,
    Land,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
    free_flags,
)
from tests.strategies import seat_bytes, u8, wire_text

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT

# One hand-computed example per 2022 packet, from the Unity client's PacketBuilder and
# ClientTCP reading offsets and the 2022 protocol text (independent of PROTOCOL.md).
HAND_GOLDEN = [
    (C2S, JoinRequest("HOST"), b"JOINHOST"),
    (C2S, ReadyRequest("Maya", 3), b"REDY\x04\x03Maya"),  # len, avatar, name
    (C2S, ReadyRequest("", 2), b"REDY\x00\x02"),
    (C2S, StartGame(), b"STRT"),
    (C2S, Spin(4), b"SPIN\x04"),
    (C2S, CardAnswer(1, -2), b"CARD\x01\xfe"),
    (C2S, Land(4, 5), b"LAND\x04\x05"),
    (C2S, EndTurn(), b"ENDT"),
    (C2S, CareerChoice(3, "System Architect", 105), b"CRER\x03\x10System Architect\x69"),
    (S2C, UnityJoinResponse(1, "QZMB"), b"JOIN\x01QZMB"),
    (S2C, UnityJoinResponse(2, free=(1, 1, 0, 1, 1, 1)), b"JOIN\x02\x01\x01\x00\x01\x01\x01"),
    (S2C, UnityJoinResponse(4), b"JOIN\x04"),
    (S2C, Lobby(2), b"LOBY\x02"),
    (S2C, HostUpdate(2, 1, "Jonas"), b"HUPD\x02\x01\x05Jonas"),
    (S2C, PlayerUpdate((0, 1, 0, 1, 1, 1)), b"PUPD\x00\x01\x00\x01\x01\x01"),
    (S2C, UnityReadyResponse(1, 0), b"REDY\x01\x00"),
    (S2C, UnityGameUpdate(3), b"GAME\x03"),
    (S2C, Move(1, -3), b"MOVE\x01\xfd"),
    (S2C, CardDealt(3, 2), b"CARD\x03\x02"),
    (S2C, CardUpdate(4), b"CUPD\x04"),
    (S2C, FinalResults((1, 0, 0, 0, 0, 0), ("Media Planner", "", "", "", "", ""), (54, 0, 0, 0, 0, 0)),
     b"FINL\x01\x00\x00\x00\x00\x00\x0dMedia Planner\x00\x00\x00\x00\x00\x36\x00\x00\x00\x00\x00"),
    (S2C, Reset(), b"RSET"),
]


def check_declaration(direction: Direction, packet, wire: bytes) -> None:
    declaration = UNITY_2022.declaration_of(type(packet))
    assert declaration.direction is direction is direction_of(packet)
    assert tag_of(packet).encode() == declaration.tag == wire[:4]
    assert encode(packet, UNITY_2022) == wire
    fields = {name: getattr(packet, name) for name in declaration.field_names}
    assert declaration.tag + declaration.body.build(fields) == wire, "compiled and interpreted build differ"
    assert declaration.frame_size(wire, 0, len(wire)) == len(wire)
    assert declaration.frame_size(wire + b"JUNK", 0, len(wire) + 4) == len(wire)
    for cut in range(len(wire)):
        claimed = declaration.frame_size(wire[:cut], 0, cut)
        assert claimed is None or claimed == len(wire)
    assert len(wire) <= declaration.largest <= UNITY_2022.max_packet_size[direction]
    assert decode_all(direction, wire, dialect=UNITY_2022) == [packet]
    assert decode_all(direction, wire, dialect=UNITY_2022, compiled=False) == [packet]


@pytest.mark.parametrize("direction,packet,wire", HAND_GOLDEN, ids=[f"{d.value}-{type(p).__name__}" for d, p, _ in HAND_GOLDEN])
def test_hand_golden_parse_build_and_size(direction, packet, wire):
    check_declaration(direction, packet, wire)


def test_every_2022_packet_has_a_hand_golden():
    assert {type(p) for _, p, _ in HAND_GOLDEN} == set(CLIENT_PACKETS) | set(SERVER_PACKETS)


@st.composite
def join_answers(draw: st.DrawFn) -> UnityJoinResponse:
    response = draw(u8)
    room = "".join(draw(st.lists(st.sampled_from("ABCDXYZ"), min_size=4, max_size=4))) if response == 1 else None
    return UnityJoinResponse(response, room, draw(seat_bytes) if response == 2 else None)


client_2022 = st.one_of(
    st.builds(ReadyRequest, wire_text, u8),
    st.builds(Land, u8, u8),
    st.just(EndTurn()),
)
server_2022 = st.one_of(
    join_answers(),
    st.builds(Lobby, u8),
    st.builds(HostUpdate, u8, u8, wire_text),
    st.builds(PlayerUpdate, seat_bytes),
    st.builds(UnityReadyResponse, u8, u8),
    st.builds(UnityGameUpdate, u8),
    st.builds(Move, u8, st.integers(-128, 127)),
    st.builds(CardUpdate, u8),
)


@settings(max_examples=150)
@given(client_2022)
def test_client_packets_parse_build_and_size(packet):
    check_declaration(C2S, packet, encode(packet, UNITY_2022))


@settings(max_examples=150)
@given(server_2022)
def test_server_packets_parse_build_and_size(packet):
    check_declaration(S2C, packet, encode(packet, UNITY_2022))


@given(st.lists(st.one_of(client_2022, st.builds(Spin, u8), st.just(StartGame())), max_size=8), st.data())
def test_any_chunking_gives_the_same_packets(packets, data):
    wire = b"".join(encode(p, UNITY_2022) for p in packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    decoder = Decoder(C2S, dialect=UNITY_2022)
    got = []
    for start, stop in zip([0, *cuts], [*cuts, len(wire)]):
        decoder.receive_data(wire[start:stop])
        while isinstance(found := decoder.next_packet(), Decoded):
            got.append(found.packet)
        assert found is None
    assert got == packets and decoder.end_of_stream() is None


def test_the_2022_redy_and_the_v1_redy_are_the_same_packet_in_two_layouts():
    packet = ReadyRequest("Maya", 3)
    assert encode(packet) == b"REDY\x04Maya\x03"  # v1.0: len, name, avatar -- unchanged
    assert encode(packet, UNITY_2022) == b"REDY\x04\x03Maya"
    assert decode_all(C2S, b"REDY\x04\x03Maya", dialect=UNITY_2022) == [packet]
    # The Unity client's REDY read as v1.0 is another name: why the players were refused.
    assert decode_all(C2S, b"REDY\x04\x03Maya") == [ReadyRequest("\x03May", ord("a"))]


def test_the_2022_redy_waits_for_its_name():
    decoder = Decoder(C2S, dialect=UNITY_2022)
    for byte in b"REDY\x04\x03May":
        decoder.receive_data(bytes([byte]))
        assert decoder.next_packet() is None
    decoder.receive_data(b"a")
    assert decoder.next_packet() == Decoded(ReadyRequest("Maya", 3), 0, 10)


def test_packets_of_the_other_direction_or_dialect_are_bad_bytes():
    # A 2022 server's LOBY is not a v1.0 packet, and v1.0 clients never send LAND.
    assert isinstance(_first(Decoder(S2C), b"LOBY\x01"), BadBytes)
    assert isinstance(_first(Decoder(C2S), b"LAND\x01\x00"), BadBytes)
    assert isinstance(_first(Decoder(C2S, dialect=UNITY_2022), b"GAME\x01"), BadBytes)
    with pytest.raises(RemoteProtocolError, match="unknown tag"):
        decode_all(C2S, b"HUPD\x01\x01\x00", dialect=UNITY_2022)


def _first(decoder: Decoder, data: bytes):
    decoder.receive_data(data)
    return decoder.next_packet()


def test_v1_packets_that_2022_replaced_are_not_2022_packets():
    for packet in (JoinResponse(2), ReadyResponse(0, (0,) * 6), GameUpdate(1, 0, (1,) + (0,) * 55)):
        with pytest.raises(LocalProtocolError, match="not a packet of unity-2022"):
            encode(packet, UNITY_2022)
    with pytest.raises(LocalProtocolError):
        encode(Lobby(1))  # and v1.0 has no LOBY


def test_shared_packets_keep_v1_bytes_and_declarations():
    shared = [d for d in UNITY_2022.declarations if d in codec.DECLARATIONS]
    assert {d.packet_type for d in shared} == {
        JoinRequest, StartGame, Spin, CardAnswer, CareerChoice, CardDealt, FinalResults, Reset,
    }
    for packet in (CardDealt(4, 29), Reset(), CareerChoice(5, "Creative Director", 132)):
        assert encode(packet, UNITY_2022) == encode(packet)


def test_sizes_from_the_2022_text():
    sizes = {d.packet_type: d.fixed_size for d in UNITY_2022.declarations}
    assert sizes[Lobby] == 5 and sizes[PlayerUpdate] == 10 and sizes[UnityReadyResponse] == 6
    assert sizes[UnityGameUpdate] == 5 and sizes[Move] == 6 and sizes[CardUpdate] == 5
    assert sizes[Land] == 6 and sizes[EndTurn] == 4
    assert sizes[ReadyRequest] is None and sizes[HostUpdate] is None and sizes[UnityJoinResponse] is None
    assert [len(encode(UnityJoinResponse(n, *a), UNITY_2022)) for n, *a in ((1, "ABCD"), (2, None, (1,) * 6), (3,), (5,))] == [9, 11, 5, 5]


def test_join_answer_fields_go_with_their_code():
    with pytest.raises(LocalProtocolError, match="free"):
        UnityJoinResponse(2)
    with pytest.raises(LocalProtocolError, match="free"):
        UnityJoinResponse(3, free=(1,) * 6)
    with pytest.raises(LocalProtocolError, match="room"):
        UnityJoinResponse(2, "ABCD", (1,) * 6)
    with pytest.raises(LocalProtocolError, match="spaces"):
        Move(1, 200)


def test_free_flags_turn_a_seat_array_into_avatar_flags():
    assert free_flags((3, 1, 0, 0, 0, 0)) == (0, 1, 0, 1, 1, 1)
    assert free_flags((0,) * 6) == (1,) * 6
    assert free_flags((6, 5, 4, 3, 2, 1)) == (0,) * 6


def test_a_reordered_declaration_must_say_so():
    body = Struct("avatar" / Int8ub, "name" / Int8ub)  # ReadyRequest's fields, the other way round
    with pytest.raises(TypeError, match="not the class's fields"):
        Declaration(ReadyRequest, C2S, b"TEST", body)
    assert Declaration(ReadyRequest, C2S, b"TEST", body, reordered=True).field_names == ("avatar", "name")


def test_dialects_by_name():
    assert DIALECTS == {"v1.0": V1_0, "unity-2022": UNITY_2022}
    assert dialect_named("unity-2022") is UNITY_2022 and dialect_named(V1_0) is V1_0
    with pytest.raises(ValueError, match="v1.0, unity-2022"):
        dialect_named("unity-2023")
    assert UNITY_2022.max_packet_size == {C2S: 262, S2C: 1552}


@given(st.binary(max_size=300))
def test_valid_bytes_reencode_exactly(data):
    """encode(decode(b)) == b in the 2022 dialect too, and the decoder never raises."""
    for direction in (C2S, S2C):
        decoder = Decoder(direction, dialect=UNITY_2022)
        decoder.receive_data(data)
        packets = []
        while isinstance(found := decoder.next_packet(), Decoded):
            packets.append(found.packet)
        if found is None and decoder.end_of_stream() is None:
            assert b"".join(encode(p, UNITY_2022) for p in packets) == data
        else:
            assert b"".join(encode(p, UNITY_2022) for p in packets) == data[: decoder.offset]
