"""The decoder fuzz target: one function that checks every decoder invariant on one input.

``check_decoder(direction, data)`` decodes ``data`` several ways and raises
``AssertionError`` (or lets any unexpected exception through) when an
invariant breaks. It is called by the atheris driver (fuzz/fuzz_decoder.py)
and by tests/test_fuzz.py with random and hypothesis inputs.

Invariants, for either direction:

1. **Only framing failures.** ``next_packet`` returns ``Decoded``, ``None`` or
   ``BadBytes`` and ``end_of_stream`` ``BadBytes`` or ``None``; nothing ever
   raises. ``BadBytes`` must be a *framing* failure (bad tag, bytes that begin no
   tag, stream ended inside a packet): the decoder's catch-all "undecodable body"
   means the framer accepted a frame the parser could not parse, which the
   codec's design says cannot happen, so it is a bug too.
2. **Chunking does not matter.** The stream fed whole, byte by byte, and in a
   random chunking (seeded by the input), and fed whole to the *interpreted*
   (non-compiled) construct parsers, gives the same packets at the same offsets
   with the same sizes, and the same failure (same stream offset, found by
   ``next_packet`` or by ``end_of_stream`` alike). The failure's wording may
   differ: a bad tag is "bytes that begin no LGMP tag" as soon as its first bytes
   rule every tag out, and "unknown tag" when all four bytes arrived together;
   both name the same offset.
3. **Exact re-encoding.** Every decoded packet re-encodes (``encode``) to exactly
   the bytes at its offset and size; the packets tile the stream from offset 0 up
   to the failure's offset (or to the end of the data).
4. **Bounded buffering.** Once ``next_packet`` returns None, ``offset + buffered``
   is the number of bytes received and ``buffered`` is less than the direction's
   largest packet.
5. **A failed decoder stays failed**: further ``next_packet`` and
   ``end_of_stream`` calls return the same ``BadBytes`` object, and bytes
   received after it change nothing.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field

from lgmp.wire.codec import MAX_PACKET_SIZE, BadBytes, Decoded, Decoder, encode
from lgmp.wire.packets import Direction

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
DIRECTIONS = {"c2s": C2S, "s2c": S2C}

# The framing failures the decoder may report; anything else (notably "undecodable body") is a bug.
_FRAMING_REASONS = re.compile(r"bytes that begin no LGMP tag|unknown tag for (c2s|s2c)|stream ended inside a packet \(\d+ bytes of it\)")


@dataclass
class Decoding:
    """What one decoder made of one input."""

    found: list[Decoded] = field(default_factory=list)
    failed: BadBytes | None = None
    failed_by: str | None = None  # "next_packet" or "end_of_stream"

    @property
    def packets(self) -> list:
        return [d.packet for d in self.found]

    def key(self) -> tuple:
        failure = None if self.failed is None else (self.failed.offset, self.failed_by)
        return (self.found, failure)


def decode(direction: Direction, pieces: list[bytes], *, compiled: bool = True) -> Decoding:
    """Receive ``pieces`` in turn into a fresh decoder, draining after each; checks invariants 1, 4 and 5."""
    decoder = Decoder(direction, compiled=compiled)
    limit = MAX_PACKET_SIZE[direction]
    out = Decoding()
    received = 0
    for piece in pieces:
        decoder.receive_data(piece)
        received += len(piece)
        while (found := decoder.next_packet()) is not None:
            if isinstance(found, BadBytes):
                out.failed, out.failed_by = found, "next_packet"
                break
            assert isinstance(found, Decoded), f"next_packet returned {found!r}"
            out.found.append(found)
        if out.failed is not None:
            break
        assert decoder.offset + decoder.buffered == received, (decoder.offset, decoder.buffered, received)
        assert 0 <= decoder.buffered < limit, f"{decoder.buffered} bytes buffered, largest packet is {limit}"
    else:
        ended = decoder.end_of_stream()
        if ended is not None:
            out.failed, out.failed_by = ended, "end_of_stream"
    if out.failed is not None:
        bad = out.failed
        assert isinstance(bad, BadBytes), f"end_of_stream returned {bad!r}"
        assert _FRAMING_REASONS.fullmatch(bad.reason), f"not a framing failure: {bad!r}"
        assert decoder.failed is bad
        # A failed decoder stays failed, with the same answer, whatever comes next.
        offset = decoder.offset
        decoder.receive_data(b"STRT")
        assert decoder.next_packet() is bad, "a failed decoder decoded more"
        assert decoder.end_of_stream() is bad, "a failed decoder ended differently"
        assert decoder.offset == offset == bad.offset
    return out


def check_decoder(direction: Direction, data: bytes) -> Decoding:
    """Check every invariant on ``data``; the byte-by-byte decoding."""
    data = bytes(data)
    whole = decode(direction, [data] if data else [])
    single = decode(direction, [data[i : i + 1] for i in range(len(data))])
    rng = random.Random(zlib.crc32(data))
    cuts = sorted({0, len(data), *(rng.randint(0, len(data)) for _ in range(rng.randint(0, 8)))})
    split = decode(direction, [data[a:b] for a, b in zip(cuts, cuts[1:])])
    interpreted = decode(direction, [data] if data else [], compiled=False)

    assert whole.key() == single.key(), f"whole {whole.key()} != byte by byte {single.key()}"
    assert whole.key() == split.key(), f"whole {whole.key()} != chunked at {cuts} {split.key()}"
    assert whole.key() == interpreted.key(), f"compiled {whole.key()} != interpreted {interpreted.key()}"

    # Exact re-encoding, packet by packet, tiling the stream.
    end = 0
    for found in whole.found:
        assert found.offset == end, f"{found!r} does not start where the previous packet ended ({end})"
        stop = end + found.size
        wire = encode(found.packet)
        assert wire == data[end:stop], f"{found.packet!r} re-encodes to {wire!r}, decoded from {data[end:stop]!r}"
        end = stop
    if whole.failed is not None:
        assert whole.failed.offset == end, f"failure at offset {whole.failed.offset}, last packet ended at {end}"
        if whole.failed_by == "end_of_stream":
            assert end < len(data)
    else:
        assert end == len(data), "decoded cleanly but did not consume every byte"
    return single
