"""Random LGMP packets, streams and mutations from a plain ``random.Random``.

Hypothesis strategies (tests/strategies.py) drive the property tests; these
helpers are for the places where hypothesis does not fit: the seed corpus
script, the network fuzzer's hostile sessions and the quick random loops in
tests/test_fuzz.py. Everything is reproducible from the ``Random`` passed in.

``client_packet``/``server_packet`` mix *plausible* values (catalogue careers,
names that pass the name rules, spins 1-6, the answers cards accept) with
arbitrary ones (any byte, text with non-ASCII bytes, lengths up to 255), so
that a stream built from them reaches both the framer's edge cases and the
room's deeper states.
"""

from __future__ import annotations

import random

from lgmp.wire.codec import encode
from lgmp.wire.packets import (
    BOARD_SPACES,
    SEAT_COUNT,
    TEXT_MAX,
    CardAnswer,
    CardDealt,
    CareerChoice,
    Direction,
    FinalResults,
    GameUpdate,
    JoinRequest,
    JoinResponse,
    Packet,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from lgmp.game.rules import ALL_CAREERS, SPIN_NUMBERS, wire_salary

#: Names: valid ones, one per answer code of REDY (2 empty, 3 too long, 4 bad characters, 6 profane).
NAMES = ("Ann", "ann", "Bob", "Maya", "Jonas", "[X]", "a1", "ABCDEFGHIJKL", "", "ABCDEFGHIJKLM", "B@d", "Dave_", "shit")
CATALOGUE = tuple((int(career.field), career.name, wire_salary(career)) for career in ALL_CAREERS)


def wire_text(rng: random.Random, max_size: int = TEXT_MAX) -> str:
    """Any bytes as wire text: ASCII as is, 0x80-0xFF as surrogate escapes (as the codec decodes them)."""
    size = rng.choice((0, 1, 2, 4, 12, 13, rng.randint(0, max_size), max_size))
    return bytes(rng.randrange(256) for _ in range(min(size, max_size))).decode("ascii", "surrogateescape")


def u8(rng: random.Random) -> int:
    return rng.choice((0, 1, 2, 5, 6, 7, 127, 128, 255, rng.randrange(256)))


def client_packet(rng: random.Random, room: str | None = None) -> Packet:
    """One client->server packet: plausible about two times in three, arbitrary otherwise."""
    plausible = rng.random() < 0.66
    kind = rng.randrange(6)
    if kind == 0:
        choices = ["HOST", "host"] + ([room, room.lower()] if room else [])
        code = rng.choice(choices) if plausible else wire_text(rng, 4).ljust(4, "A")[:4]
        return JoinRequest(code)
    if kind == 1:
        if plausible:
            return ReadyRequest(rng.choice(NAMES), rng.randint(0, 7))
        return ReadyRequest(wire_text(rng), u8(rng))
    if kind == 2:
        return StartGame()
    if kind == 3:
        return Spin(rng.randint(min(SPIN_NUMBERS), max(SPIN_NUMBERS)) if plausible else u8(rng))
    if kind == 4:
        if plausible:
            action = rng.choice((1, 2))
            return CardAnswer(action, rng.randint(-3, 3) if action == 1 else rng.randint(0, 6))
        action = u8(rng)
        return CardAnswer(action, rng.randint(-128, 127) if action == 1 else u8(rng))
    if plausible:
        field, career, salary = rng.choice(CATALOGUE)
        if rng.random() < 0.3:  # near misses: wrong field, case, or salary
            field, career, salary = rng.choice(
                (((field % 6) + 1, career, salary), (field, career.upper(), salary), (field, career, (salary + 1) % 256))
            )
        return CareerChoice(field, career, salary)
    return CareerChoice(u8(rng), wire_text(rng), u8(rng))


def server_packet(rng: random.Random) -> Packet:
    kind = rng.randrange(6)
    if kind == 0:
        response = rng.choice((1, 2, 3, 4, 5, u8(rng)))
        return JoinResponse(response, wire_text(rng, 4).ljust(4, "Q")[:4] if response == 1 else None)
    if kind == 1:
        return ReadyResponse(u8(rng), tuple(rng.randint(0, 6) if rng.random() < 0.8 else u8(rng) for _ in range(SEAT_COUNT)))
    if kind == 2:
        return GameUpdate(u8(rng), rng.randint(0, 5), tuple(rng.choice((0, 0, 0, 1, 2, u8(rng))) for _ in range(BOARD_SPACES)))
    if kind == 3:
        return CardDealt(rng.randint(0, 6), u8(rng))
    if kind == 4:
        careers = tuple(rng.choice(("", rng.choice(CATALOGUE)[1], wire_text(rng))) for _ in range(SEAT_COUNT))
        return FinalResults(tuple(u8(rng) for _ in range(SEAT_COUNT)), careers, tuple(u8(rng) for _ in range(SEAT_COUNT)))
    return Reset()


def packet(rng: random.Random, direction: Direction) -> Packet:
    return client_packet(rng) if direction is Direction.CLIENT_TO_SERVER else server_packet(rng)


def stream(rng: random.Random, direction: Direction, max_packets: int = 8) -> bytes:
    """The bytes of 0..max_packets random packets of ``direction``."""
    return b"".join(encode(packet(rng, direction)) for _ in range(rng.randint(0, max_packets)))


def mutate(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """A few byte-level mutations: flip, replace, insert, delete, duplicate, truncate, splice a tag."""
    buf = bytearray(data)
    for _ in range(rounds if rounds is not None else rng.randint(1, 4)):
        op = rng.randrange(8)
        at = rng.randint(0, len(buf))
        if op == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[rng.randrange(len(buf))] = u8(rng)
        elif op == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 3 and buf:
            del buf[at : at + rng.randint(1, 8)]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start : start + rng.randint(1, 32)]
        elif op == 5:
            del buf[rng.randint(0, len(buf)) :]
        elif op == 6:
            buf[at:at] = rng.choice((b"JOIN", b"REDY", b"STRT", b"SPIN", b"CARD", b"CRER", b"GAME", b"FINL", b"RSET"))
        else:
            buf[at:at] = bytes([rng.choice((0, 0xFF, 0x80, 0x7F))]) * rng.randint(1, 3)
    return bytes(buf)


def chunks(rng: random.Random, data: bytes, max_chunks: int = 6) -> list[bytes]:
    """``data`` cut at random points (every piece non-empty)."""
    if not data:
        return []
    cuts = sorted({0, len(data), *(rng.randint(1, len(data)) for _ in range(rng.randint(0, max_chunks - 1)))})
    return [data[a:b] for a, b in zip(cuts, cuts[1:])]
