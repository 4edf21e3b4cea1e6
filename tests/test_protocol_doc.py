"""PROTOCOL.md's worked examples are golden bytes: each is checked against the codec both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lgmp.wire.codec import DECLARATIONS, MAX_PACKET_SIZE, decode_all, encode
from lgmp.wire.packets import CLIENT_PACKETS, SERVER_PACKETS, Direction

DOC = Path(__file__).resolve().parent.parent / "PROTOCOL.md"
_EXAMPLE = re.compile(r"<!-- golden: (c2s|s2c) (.+?) -->\s*```hex\n(.*?)```", re.S)


def _examples() -> list[tuple[Direction, str, bytes]]:
    found = []
    for direction, expression, hex_text in _EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        found.append((Direction(direction), expression, bytes.fromhex(hex_text)))
    return found


EXAMPLES = _examples()
_NAMESPACE = {cls.__name__: cls for cls in (*CLIENT_PACKETS, *SERVER_PACKETS)}


def _packet(expression: str):
    return eval(expression, {"__builtins__": {}}, dict(_NAMESPACE))  # noqa: S307 - our own document


def test_document_has_an_example_of_every_packet():
    kinds = {(direction, type(_packet(expr))) for direction, expr, _ in EXAMPLES}
    expected = {(Direction.CLIENT_TO_SERVER, c) for c in CLIENT_PACKETS} | {
        (Direction.SERVER_TO_CLIENT, c) for c in SERVER_PACKETS
    }
    assert expected <= kinds


@pytest.mark.parametrize("direction,expression,wire", EXAMPLES, ids=[e[1][:60] for e in EXAMPLES])
def test_example_both_ways(direction, expression, wire):
    packet = _packet(expression)
    assert encode(packet) == wire
    assert decode_all(direction, wire) == [packet]


# --- the byte tables and answer codes ------------------------------------------------

_SECTION = re.compile(r"^### (\d)\.\d+ `(\w{4})`[^\n]*\n(.*?)(?=^### |^## )", re.S | re.M)
_ROW = re.compile(r"^\| (\d+) \| (\d+) \| [^|]+\|", re.M)


def _byte_tables() -> dict[tuple[Direction, bytes], str]:
    sections = {}
    for chapter, tag, body in _SECTION.findall(DOC.read_text(encoding="utf-8")):
        if chapter in ("3", "4"):
            direction = Direction.CLIENT_TO_SERVER if chapter == "3" else Direction.SERVER_TO_CLIENT
            sections[(direction, tag.encode())] = body
    return sections


def test_every_packet_has_a_byte_table_that_matches_the_codec():
    tables = _byte_tables()
    checked = []
    for declaration in DECLARATIONS:
        direction, tag = declaration.direction, declaration.tag
        body = tables.get((direction, tag))
        assert body is not None, f"no section for {direction.value} {tag}"
        assert f"| 0 | 4 | ascii | tag `{tag.decode()}` |" in body
        rows = [(int(offset), int(length)) for offset, length in _ROW.findall(body)]
        assert rows, f"no byte table for {direction.value} {tag}"
        if declaration.fixed_size is not None:  # else the size depends on bytes inside the body
            assert max(o + n for o, n in rows) == declaration.fixed_size, f"{direction.value} {tag} table size"
            checked.append(tag)
    assert len(checked) == 8  # JOIN STRT SPIN CARD from clients; REDY GAME CARD RSET from the server


def test_the_stated_maximum_sizes_are_the_codecs():
    text = DOC.read_text(encoding="utf-8")
    assert f"client → server **{MAX_PACKET_SIZE[Direction.CLIENT_TO_SERVER]} bytes**" in text
    assert f"server → client **{MAX_PACKET_SIZE[Direction.SERVER_TO_CLIENT]} bytes**" in text


def test_every_answer_code_is_named_with_the_specs_words():
    text = DOC.read_text(encoding="utf-8").lower()
    join = {1: "host", 2: "player", 3: "lobby full", 4: "could not find room", 5: "game already started"}
    ready = {0: "update", 1: "accepted", 2: "no username input", 3: "username too long",
             4: "invalid characters", 5: "already taken", 6: "not allowed"}
    for code, name in (*join.items(), *ready.items()):
        assert f"| {code} | {name} |" in text, name
