"""Hypothesis strategies for LGMP packets, shared by the codec, dumper and fuzz tests."""

from __future__ import annotations

from hypothesis import strategies as st

from lgmp.wire.packets import (
    BOARD_SPACES,
    SEAT_COUNT,
    TEXT_MAX,
    CardAnswer,
    CardDealt,
    CareerChoice,
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

u8 = st.integers(0, 255)
# Wire text: any byte. ASCII stays ASCII; 0x80-0xFF decode as surrogate escapes.
wire_char = st.one_of(st.characters(max_codepoint=127), st.integers(0xDC80, 0xDCFF).map(chr))
wire_text = st.text(alphabet=wire_char, max_size=TEXT_MAX)
room_code = st.text(alphabet=wire_char, min_size=4, max_size=4)
seat_bytes = st.tuples(*[u8] * SEAT_COUNT)


@st.composite
def card_answers(draw: st.DrawFn) -> CardAnswer:
    action = draw(u8)
    value = draw(st.integers(-128, 127) if action == 1 else u8)
    return CardAnswer(action, value)


@st.composite
def join_responses(draw: st.DrawFn) -> JoinResponse:
    response = draw(u8)
    return JoinResponse(response, draw(room_code) if response == 1 else None)


client_packets = st.one_of(
    st.builds(JoinRequest, room_code),
    st.builds(ReadyRequest, wire_text, u8),
    st.just(StartGame()),
    st.builds(Spin, u8),
    card_answers(),
    st.builds(CareerChoice, u8, wire_text, u8),
)

server_packets = st.one_of(
    join_responses(),
    st.builds(ReadyResponse, u8, seat_bytes),
    st.builds(GameUpdate, u8, u8, st.tuples(*[u8] * BOARD_SPACES)),
    st.builds(CardDealt, u8, u8),
    st.builds(FinalResults, seat_bytes, st.tuples(*[wire_text] * SEAT_COUNT), seat_bytes),
    st.just(Reset()),
)
