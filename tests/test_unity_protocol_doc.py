"""PROTOCOL.md chapter 12, the 2022 dialect, checked like chapters 3 and 4: its worked examples
are golden bytes both ways, its byte tables match the codec, its stated limits are the
server's, and its lobby transcript is replayed against the server, byte for byte, with
models of the Unity client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
import trio.testing

from lgmp.limits import Limits
from lgmp.wire import unity2022
from lgmp.wire.codec import decode_all, encode
from lgmp.wire.packets import Direction, JoinRequest, ReadyRequest, StartGame
from lgmp.wire.unity2022 import UNITY_2022
from tests.conftest import TEST_LIMITS
from tests.unity_model import UnityClient

DOC = Path(__file__).resolve().parent.parent / "PROTOCOL.md"
TEXT = DOC.read_text(encoding="utf-8")
CHAPTER = TEXT[TEXT.index("## 12. ") :]
_EXAMPLE = re.compile(r"<!-- golden: unity-2022 (c2s|s2c) (.+?) -->\s*```hex\n(.*?)```", re.S)
EXAMPLES = [(Direction(d), expr, bytes.fromhex(h)) for d, expr, h in _EXAMPLE.findall(TEXT)]
_NAMESPACE = {cls.__name__: cls for cls in (*unity2022.CLIENT_PACKETS, *unity2022.SERVER_PACKETS)}


def _packet(expression: str):
    return eval(expression, {"__builtins__": {}}, dict(_NAMESPACE))  # noqa: S307 - our own document


@pytest.mark.parametrize("direction,expression,wire", EXAMPLES, ids=[e[1][:60] for e in EXAMPLES])
def test_example_both_ways(direction, expression, wire):
    packet = _packet(expression)
    assert encode(packet, UNITY_2022) == wire
    assert decode_all(direction, wire, dialect=UNITY_2022) == [packet]


def test_every_2022_layout_has_an_example():
    own = {d for d in UNITY_2022.declarations if d.packet_type.__module__ == "lgmp.wire.unity2022"}
    own.add(UNITY_2022.declaration_of(unity2022.ReadyRequest))  # v1.0's class, its own layout
    shown = {(direction, type(_packet(expr))) for direction, expr, _ in EXAMPLES}
    assert {(d.direction, d.packet_type) for d in own} <= shown


_SECTION = re.compile(r"^#### 12\.(\d)\.\d+ `(\w{4})`[^\n]*\n(.*?)(?=^#### |^### |^## )", re.S | re.M)
_ROW = re.compile(r"^\| (\d+) \| (\d+|len) \| [^|]+\|", re.M)


def test_every_2022_layout_has_a_byte_table_that_matches_the_codec():
    tables = {}
    for part, tag, body in _SECTION.findall(CHAPTER):
        direction = Direction.CLIENT_TO_SERVER if part == "2" else Direction.SERVER_TO_CLIENT
        tables[(direction, tag.encode())] = body
    checked = []
    for declaration in UNITY_2022.declarations:
        if declaration.packet_type.__module__ != "lgmp.wire.unity2022" and declaration.tag != b"REDY":
            continue  # v1.0's own layout: chapters 3 and 4
        body = tables.get((declaration.direction, declaration.tag))
        assert body is not None, f"no section for {declaration.direction.value} {declaration.tag}"
        assert f"| 0 | 4 | ascii | tag `{declaration.tag.decode()}` |" in body
        rows = [(int(offset), length) for offset, length in _ROW.findall(body)]
        assert rows, f"no byte table for {declaration.direction.value} {declaration.tag}"
        if declaration.fixed_size is not None:
            assert max(o + int(n) for o, n in rows) == declaration.fixed_size, declaration.tag
            checked.append(declaration.tag)
    assert sorted(checked) == sorted([b"LAND", b"ENDT", b"LOBY", b"PUPD", b"REDY", b"GAME", b"MOVE", b"CUPD"])


def test_the_stated_sizes_and_gap_are_the_servers():
    assert f"client → server **{UNITY_2022.max_packet_size[Direction.CLIENT_TO_SERVER]} bytes**" in CHAPTER
    assert f"server → client **{UNITY_2022.max_packet_size[Direction.SERVER_TO_CLIENT]} bytes**" in CHAPTER
    gap_ms = round(Limits().unity_packet_gap * 1000)
    assert f"**`unity_packet_gap`, default {gap_ms} ms**" in CHAPTER
    assert f"| gap between two packets to a `unity-2022` client | {gap_ms} ms |" in TEXT


# --- the lobby transcript ------------------------------------------------------------------

_TRANSCRIPT = re.compile(r"<!-- transcript: unity-2022 lobby, room (\w{4}) -->\n(.*?)\n\n", re.S)
_LINE = re.compile(r"^\| (\w+) → (\w+) \| [^|]+ \| `([0-9a-f ]+)` \|", re.M)


def transcript() -> tuple[str, list[tuple[str, str, bytes]]]:
    code, table = _TRANSCRIPT.search(CHAPTER).groups()
    return code, [(src, dst, bytes.fromhex(hex_)) for src, dst, hex_ in _LINE.findall(table)]


def test_the_transcript_is_2022_packets():
    code, lines = transcript()
    assert len(lines) >= 20
    for src, dst, data in lines:
        direction = Direction.CLIENT_TO_SERVER if dst == "S" else Direction.SERVER_TO_CLIENT
        assert len(decode_all(direction, data, dialect=UNITY_2022)) == 1, data


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0.01)  # the 50 ms gaps, without the wait


async def test_the_lobby_transcript_against_the_server(lgmp_server, nursery, clock):
    doc_code, lines = transcript()
    net = await lgmp_server(limits=TEST_LIMITS, dialect="unity-2022")
    clients: dict[str, UnityClient] = {}
    owed: dict[str, int] = {}  # packets each client must have handled by this point of the transcript
    expected: dict[str, list[bytes]] = {}
    for src, dst, data in lines:
        if dst != "S":
            expected.setdefault(dst, []).append(data)
    live_code = None

    def live(data: bytes) -> bytes:  # the document's room code -> the live room's
        return data.replace(doc_code.encode(), live_code.encode())

    for src, dst, data in lines:
        if dst != "S":
            owed[dst] = owed.get(dst, 0) + 1
            continue
        # Before a client sends, everything listed before it has arrived.
        for name, model in clients.items():
            await model.read_until(lambda m=model, n=owed.get(name, 0): len(m.handled) >= n)
        if src not in clients:
            clients[src] = await UnityClient.connect(net.port, nursery)
        if live_code is None and src != "H":
            live_code = clients["H"].handled[0].room
        await press(clients[src], data, live_code)
    for name, model in clients.items():
        await model.read_until(lambda m=model, n=owed[name]: len(m.handled) >= n)
        await model.quiet(0.2)
        assert model.handled_bytes == [live(data) for data in expected[name]], name
        assert model.discarded == [] and model.errors == [] and not model.stuck
    # What the models show afterwards is what the transcript's comments say.
    assert [(a.name, a.avatar) for a in clients["H"].curr_avatars] == [("Maya", 2), ("Jonas", 0)]
    assert clients["P1"].my_avatar == ("Maya", 2) and clients["P2"].my_avatar == ("Jonas", 0)


async def press(model: UnityClient, data: bytes, code: str | None) -> None:
    """Send ``data`` as the Unity client would: by its buttons, which build those bytes."""
    (packet,) = decode_all(Direction.CLIENT_TO_SERVER, data, dialect=UNITY_2022)
    if isinstance(packet, JoinRequest) and packet.room == "HOST":
        await model.on_button_host()
    elif isinstance(packet, JoinRequest):
        await model.on_connect_room(code)
    elif isinstance(packet, ReadyRequest):
        assert packet_builder_ready(packet.name, packet.avatar) == data
        model.on_choose_avatar(packet.avatar)
        model.on_username_end_edit(packet.name)
        await model.on_submit_player()
    elif isinstance(packet, StartGame):
        await model.start_game()
    else:
        raise AssertionError(f"no button sends {packet}")


def packet_builder_ready(name: str, avatar: int) -> bytes:
    """``PacketBuilder.Ready``: the tag, the name's length, the avatar, the name."""
    return b"REDY" + bytes([len(name), avatar]) + name.encode("ascii")
