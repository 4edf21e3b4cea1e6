#!/usr/bin/env python3
"""Generate the decoder fuzzers' seed corpus: valid packets and streams, per direction.

    python fuzz/make_corpus.py [--out DIR] [--seed N]

writes DIR/c2s/ and DIR/s2c/ (default DIR: fuzz/corpus-out/seeds, which git
ignores), one file per input, named by its SHA-1 as libFuzzer does. The corpus
is deterministic for a given --seed and small (a few hundred KB), so it is
generated at run time (fuzz/fuzz_decoder.py does it when the directory is
missing) rather than committed. It holds:

* every worked example of PROTOCOL.md (the golden hex), per direction;
* boundary packets: 255-byte texts (REDY, CRER: the largest client packet),
  FINL with six 255-byte careers (the largest server packet), empty texts,
  non-ASCII bytes in texts, JOIN answer 1 (9 bytes) and the others (5 bytes),
  signed and unsigned CARD values;
* the complete byte streams each member of a real game sent and received
  (a host and four players playing to FINL through the hub, with a leave and
  a rejoin), cut into the separate streams of every connection;
* random streams of valid packets (fuzz/packetgen.py) and a few of them
  mutated, so the fuzzer starts with some error paths too.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lgmp.wire.codec import decode_all, encode  # noqa: E402
from lgmp.wire.errors import RemoteProtocolError  # noqa: E402
from lgmp.wire.packets import (  # noqa: E402
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

from fuzz import packetgen  # noqa: E402

DEFAULT_OUT = ROOT / "fuzz" / "corpus-out" / "seeds"
C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
_GOLDEN = re.compile(r"<!-- golden: (c2s|s2c) (.+?) -->\s*```hex\n(.*?)```", re.S)


def golden_examples() -> list[tuple[Direction, bytes]]:
    doc = ROOT / "PROTOCOL.md"
    if not doc.exists():
        return []
    return [(Direction(d), bytes.fromhex(h)) for d, _, h in _GOLDEN.findall(doc.read_text(encoding="utf-8"))]


def boundary_packets() -> list:
    high = bytes(range(0x80, 0x100)).decode("ascii", "surrogateescape")
    long_text = ("Graphic Media Technical Sales Representative " * 6)[:255]
    return [
        JoinRequest("HOST"), JoinRequest("qzmb"), JoinRequest("\udcff\x00AB"),
        ReadyRequest("", 0), ReadyRequest("Maya", 3), ReadyRequest("x" * 255, 255), ReadyRequest(high[:12], 1),
        StartGame(), Spin(0), Spin(4), Spin(255),
        CardAnswer(1, -128), CardAnswer(1, 127), CardAnswer(1, -2), CardAnswer(2, 0), CardAnswer(2, 255), CardAnswer(0, 0),
        CareerChoice(5, "Creative Director", 132), CareerChoice(6, "brand/product manager", 132),
        CareerChoice(255, long_text, 255), CareerChoice(1, "", 0), CareerChoice(3, high, 105),
        JoinResponse(1, "QZMB"), JoinResponse(2), JoinResponse(0), JoinResponse(255), JoinResponse(1, "\udc80\x00\x7f\x01"),
        ReadyResponse(0, (0,) * 6), ReadyResponse(1, (3, 1, 0, 0, 0, 0)), ReadyResponse(255, (255,) * 6),
        GameUpdate(1, 0, (2,) + (0,) * 55), GameUpdate(0, 5, (0,) * 55 + (6,)), GameUpdate(255, 255, (255,) * 56),
        CardDealt(1, 4), CardDealt(5, 3), CardDealt(0, 0),
        FinalResults((1, 2, 0, 0, 0, 0), ("Creative Director", "System Architect", "", "", "", ""), (132, 105, 0, 0, 0, 0)),
        FinalResults((255,) * 6, (long_text,) * 6, (255,) * 6),  # the largest packet: 1552 bytes
        FinalResults((0,) * 6, ("",) * 6, (0,) * 6),
        Reset(),
    ]


def game_streams() -> list[tuple[Direction, bytes]]:
    """What every connection of a real game sent and received, through the hub."""
    from fuzz.room_target import RoomDriver

    driver = RoomDriver(seed=7)
    host = driver.connect()
    driver.send(host, JoinRequest("HOST"))
    code = next(iter(driver.hub.rooms))
    players = []
    for i in range(4):
        player = driver.connect()
        driver.send(player, JoinRequest(code.lower() if i % 2 else code))
        driver.legal(player, i)
        players.append(player)
    driver.send(host, StartGame())
    driver.play(20)
    driver.disconnect(players[1])
    back = driver.connect()
    driver.send(back, JoinRequest(code))
    driver.legal(back, 0)  # reclaims the vacant seat
    for _ in range(2000):  # until the first FINL (the host would start the next game at once)
        if driver.stats.games_finished:
            break
        driver.play(1)
    assert driver.stats.games_finished == 1, "the seed game did not finish"
    streams = []
    for sent, received in driver.wire.values():
        streams += [(C2S, bytes(sent)), (S2C, bytes(received))]
    return streams


def build(seed: int = 0) -> dict[Direction, set[bytes]]:
    rng = random.Random(seed)
    corpus: dict[Direction, set[bytes]] = {C2S: set(), S2C: set()}
    for direction, wire in golden_examples():
        corpus[direction].add(wire)
    for packet in boundary_packets():
        corpus[C2S if type(packet) in CLIENT_PACKETS else S2C].add(encode(packet))
    for direction, wire in game_streams():
        if wire:
            corpus[direction].add(wire)
    for direction in (C2S, S2C):
        for _ in range(40):
            corpus[direction].add(packetgen.stream(rng, direction, max_packets=6))
        valid = sorted(corpus[direction])
        for _ in range(20):
            corpus[direction].add(packetgen.mutate(rng, rng.choice(valid)))
        corpus[direction].discard(b"")
    assert {type(p) for p in boundary_packets()} == set(CLIENT_PACKETS) | set(SERVER_PACKETS)
    return corpus


def write(out: Path, seed: int = 0) -> dict[str, int]:
    counts = {}
    for direction, inputs in build(seed).items():
        folder = out / direction.value
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        counts[direction.value] = len(inputs)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write(args.out, args.seed)
    valid = 0
    for direction in (C2S, S2C):
        for path in (args.out / direction.value).iterdir():
            try:
                decode_all(direction, path.read_bytes())
                valid += 1
            except RemoteProtocolError:
                pass
    print(f"seed corpus in {args.out}: " + ", ".join(f"{d} {n} inputs" for d, n in counts.items()) + f" ({valid} decode cleanly)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
