"""Codec throughput: decode and encode packets/s for a game's packet mix.

Three readings of the same bytes:
- ``compiled``: what the server uses, decoding with ``Decoder.receive_data`` and
  ``take_packet`` as the server's connections do: the framer, then one ``struct``
  format derived from the declaration for the flat layouts (SPIN, CARD, JOIN, GAME...)
  and compiled construct for the rest (REDY, CRER, the server's JOIN, FINL),
- ``interpreted``: the same framer with interpreted construct,
- ``struct``: a hand-written ``struct`` reader/writer of the same layouts, as a
  floor for what pure Python can do. It exists only here, as a yardstick.

    python -m tools.codec_bench [--packets 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Callable

from lgmp.wire import codec
from lgmp.wire.codec import Decoder, decode_all, encode
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

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT

# A game's mix: spins and card answers dominate what clients send; GAME and
# CARD updates dominate what the server sends.
CLIENT_MIX = (
    [Spin(n) for n in (1, 2, 3, 4, 5, 6)] * 5
    + [CardAnswer(1, -2), CardAnswer(1, 2), CardAnswer(2, 5), CardAnswer(2, 0)] * 4
    + [JoinRequest("QZKW"), ReadyRequest("Player1", 3), StartGame(), CareerChoice(1, "Creative Director", 132)]
)
_board = (3, 0, 1, 0, 2) + (0,) * 51
SERVER_MIX = (
    [GameUpdate(2, 0, _board), GameUpdate(3, 4, _board)] * 10
    + [CardDealt(4, 12), CardDealt(3, 2), CardDealt(2, 7), CardDealt(1, 3)] * 3
    + [ReadyResponse(0, (1, 2, 3, 0, 0, 0)), JoinResponse(2), JoinResponse(1, "QZKW"), Reset()]
    + [FinalResults((1, 2, 3, 0, 0, 0), ("Creative Director", "Media Planner", "System Architect", "", "", ""), (132, 54, 105, 0, 0, 0))]
)

# --- the struct yardstick ----------------------------------------------------


def _struct_decode_client(buf: bytes) -> list:
    out, pos, end = [], 0, len(buf)
    while pos < end:
        tag = buf[pos : pos + 4]
        if tag == b"SPIN":
            out.append(Spin(buf[pos + 4]))
            pos += 5
        elif tag == b"CARD":
            action = buf[pos + 4]
            value = struct.unpack_from("b" if action == 1 else "B", buf, pos + 5)[0]
            out.append(CardAnswer(action, value))
            pos += 6
        elif tag == b"JOIN":
            out.append(JoinRequest(buf[pos + 4 : pos + 8].decode("ascii", "surrogateescape")))
            pos += 8
        elif tag == b"REDY":
            n = buf[pos + 4]
            out.append(ReadyRequest(buf[pos + 5 : pos + 5 + n].decode("ascii", "surrogateescape"), buf[pos + 5 + n]))
            pos += 6 + n
        elif tag == b"STRT":
            out.append(StartGame())
            pos += 4
        elif tag == b"CRER":
            n = buf[pos + 5]
            text = buf[pos + 6 : pos + 6 + n].decode("ascii", "surrogateescape")
            out.append(CareerChoice(buf[pos + 4], text, buf[pos + 6 + n]))
            pos += 7 + n
        else:
            raise ValueError(tag)
    return out


_GAME = struct.Struct("4sBB56B")


def _struct_decode_server(buf: bytes) -> list:
    out, pos, end = [], 0, len(buf)
    while pos < end:
        tag = buf[pos : pos + 4]
        if tag == b"GAME":
            fields = _GAME.unpack_from(buf, pos)
            out.append(GameUpdate(fields[1], fields[2], fields[3:]))
            pos += 62
        elif tag == b"CARD":
            out.append(CardDealt(buf[pos + 4], buf[pos + 5]))
            pos += 6
        elif tag == b"REDY":
            out.append(ReadyResponse(buf[pos + 4], tuple(buf[pos + 5 : pos + 11])))
            pos += 11
        elif tag == b"JOIN":
            if buf[pos + 4] == 1:
                out.append(JoinResponse(1, buf[pos + 5 : pos + 9].decode("ascii")))
                pos += 9
            else:
                out.append(JoinResponse(buf[pos + 4]))
                pos += 5
        elif tag == b"RSET":
            out.append(Reset())
            pos += 4
        elif tag == b"FINL":
            places = tuple(buf[pos + 4 : pos + 10])
            at, careers = pos + 10, []
            for _ in range(6):
                n = buf[at]
                careers.append(buf[at + 1 : at + 1 + n].decode("ascii"))
                at += 1 + n
            out.append(FinalResults(places, tuple(careers), tuple(buf[at : at + 6])))
            pos = at + 6
        else:
            raise ValueError(tag)
    return out


def _struct_encode(p) -> bytes:
    match p:
        case Spin(number=n):
            return b"SPIN" + bytes((n,))
        case CardAnswer(action=a, value=v):
            return b"CARD" + struct.pack("Bb" if a == 1 else "BB", a, v)
        case GameUpdate(turn=t, space=s, occupancy=o):
            return _GAME.pack(b"GAME", t, s, *o)
        case CardDealt(kind=k, number=n):
            return b"CARD" + bytes((k, n))
        case JoinRequest(room=r):
            return b"JOIN" + r.encode("ascii")
        case ReadyRequest(name=n, avatar=a):
            raw = n.encode("ascii")
            return b"REDY" + bytes((len(raw),)) + raw + bytes((a,))
        case StartGame():
            return b"STRT"
        case CareerChoice(field=f, career=c, salary=s):
            raw = c.encode("ascii")
            return b"CRER" + bytes((f, len(raw))) + raw + bytes((s,))
        case ReadyResponse(response=r, avatars=a):
            return b"REDY" + bytes((r, *a))
        case JoinResponse(response=r, room=room):
            return b"JOIN" + bytes((r,)) + (room.encode("ascii") if room else b"")
        case Reset():
            return b"RSET"
        case FinalResults(places=pl, careers=cs, salaries=sa):
            body = b"".join(bytes((len(c),)) + c.encode("ascii") for c in cs)
            return b"FINL" + bytes(pl) + body + bytes(sa)
    raise TypeError(p)


_DECLARATIONS = {d.packet_type: d for d in codec.DECLARATIONS}


def _interpreted_encode(p) -> bytes:
    declaration = _DECLARATIONS[type(p)]
    return declaration.tag + declaration.body.build({name: getattr(p, name) for name in declaration.field_names})


# --- measuring ----------------------------------------------------------------


def _best_rate(run: Callable[[], int], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - start))
    return best


def measure(packets: int, repeat: int) -> list[tuple[str, str, float]]:
    """(operation, reading, packets/s) rows for the whole mix."""
    rows = []
    for direction, mix, struct_decode in ((C2S, CLIENT_MIX, _struct_decode_client), (S2C, SERVER_MIX, _struct_decode_server)):
        copies = max(1, packets // len(mix))
        stream = b"".join(encode(p) for p in mix) * copies
        # Feed in 4 KiB reads, as a socket would deliver them.
        chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
        expected = mix * copies

        def decode_with(compiled: bool) -> int:
            decoder = Decoder(direction, compiled=compiled)
            n = 0
            for chunk in chunks:
                decoder.receive_data(chunk)
                while decoder.take_packet() is not None:  # a good stream: every one is a packet
                    n += 1
            return n

        assert decode_all(direction, stream) == expected
        assert struct_decode(stream) == expected
        name = direction.value
        rows.append((f"decode {name}", "compiled", _best_rate(lambda: decode_with(True), repeat)))
        rows.append((f"decode {name}", "interpreted", _best_rate(lambda: decode_with(False), repeat)))
        rows.append((f"decode {name}", "struct", _best_rate(lambda: len(struct_decode(stream)), repeat)))
        batch = mix * copies
        assert all(encode(p) == _interpreted_encode(p) == _struct_encode(p) for p in mix)
        for reading, fn in (("compiled", encode), ("interpreted", _interpreted_encode), ("struct", _struct_encode)):
            rows.append((f"encode {name}", reading, _best_rate(lambda fn=fn: len([fn(p) for p in batch]), repeat)))
        print(f"  measured {name}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=200_000, help="packets per measurement (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    args = parser.parse_args(argv)
    rows = measure(args.packets, args.repeat)
    print(f"{'operation':<12} {'reading':<12} {'packets/s':>12} {'vs struct':>9}")
    by_op: dict[str, float] = {op: rate for op, reading, rate in rows if reading == "struct"}
    for op, reading, rate in rows:
        print(f"{op:<12} {reading:<12} {rate:>12,.0f} {rate / by_op[op]:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
