"""PROTOCOL.md's worked examples are golden bytes: each is checked against the codec both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lgmp.codec import decode_all, encode
from lgmp.packets import CLIENT_PACKETS, SERVER_PACKETS, Direction

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
