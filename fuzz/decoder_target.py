"""The decoder fuzz target: one function that checks every decoder invariant on one input.

``check_decoder(direction, data)`` decodes ``data`` several ways and raises
``AssertionError`` (or lets any unexpected exception through) when an
invariant breaks. It is called by the atheris driver (fuzz/fuzz_decoder.py)
and by tests/test_fuzz.py with random and hypothesis inputs.

Invariants, for either direction:

1. **Only the protocol error.** Feeding any bytes either returns packets or
   raises ``RemoteProtocolError``; ``end_of_stream`` likewise. Nothing else
   ever escapes. The error must be a *framing* error (bad tag, bytes that begin
   no tag, stream ended inside a packet): the decoder's catch-all
   "undecodable body" error means the framer accepted a frame the parser could
   not parse, which the codec's design says cannot happen, so it is a bug too.
2. **Chunking does not matter.** The stream fed whole, byte by byte, and in a
   random chunking (seeded by the input), and fed whole to the *interpreted*
   (non-compiled) construct parsers, gives the same packets and the same error
   (same class, same stream offset, raised by ``feed`` or by
   ``end_of_stream`` alike). The error's wording may differ: a bad tag is
   reported as "bytes that begin no LGMP tag" as soon as its first bytes rule
   every tag out, and as "unknown tag" when all four bytes arrived together;
   both name the same offset.
3. **Exact re-encoding.** Every decoded packet re-encodes (``encode``, with no
   ``LocalProtocolError``) to exactly the bytes it was decoded from; the
   packets tile the stream from offset 0 up to the error's offset (or to the
   end of the data).
4. **Bounded buffering.** After each ``feed``, ``offset + buffered`` is the
   number of bytes fed and ``buffered`` is less than the direction's largest
   packet.
5. **A failed decoder stays failed**: further ``feed`` and ``end_of_stream``
   calls raise the same error object.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field

from lgmp.wire.codec import MAX_PACKET_SIZE, Decoder, encode
from lgmp.wire.errors import RemoteProtocolError
from lgmp.wire.packets import Direction, Packet

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
DIRECTIONS = {"c2s": C2S, "s2c": S2C}

# The framing errors the decoder may raise; anything else (notably "undecodable body") is a bug.
_FRAMING_REASONS = re.compile(r"bytes that begin no LGMP tag|unknown tag for (c2s|s2c)|stream ended inside a packet \(\d+ bytes of it\)")


@dataclass
class Decoded:
    packets: list[Packet] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # only when fed byte by byte
    error: RemoteProtocolError | None = None
    raised_by: str | None = None  # "feed" or "end_of_stream"

    def key(self) -> tuple:
        error = None if self.error is None else (type(self.error), self.error.offset, self.raised_by)
        return (self.packets, error)


def decode(direction: Direction, data: bytes, pieces: list[bytes], *, compiled: bool = True, spans: bool = False) -> Decoded:
    """Feed ``pieces`` (which concatenate to ``data``) to a fresh decoder, checking invariant 4 and 5."""
    decoder = Decoder(direction, compiled=compiled)
    limit = MAX_PACKET_SIZE[direction]
    out = Decoded()
    fed = 0
    for piece in pieces:
        try:
            got = decoder.feed(piece)
        except RemoteProtocolError as exc:
            out.packets += exc.packets
            out.error, out.raised_by = exc, "feed"
            break
        fed += len(piece)
        if spans and got:
            # Byte by byte, a feed completes at most one packet, and it ends here.
            assert len(got) == 1, f"one byte completed {len(got)} packets"
            start = out.spans[-1][1] if out.spans else 0
            out.spans.append((start, fed))
        out.packets += got
        assert decoder.offset + decoder.buffered == fed, (decoder.offset, decoder.buffered, fed)
        assert 0 <= decoder.buffered < limit, f"{decoder.buffered} bytes buffered, largest packet is {limit}"
    else:
        try:
            decoder.end_of_stream()
        except RemoteProtocolError as exc:
            assert exc.packets == [], "end_of_stream reported packets"
            out.error, out.raised_by = exc, "end_of_stream"
    if out.error is not None:
        error = out.error
        assert _FRAMING_REASONS.fullmatch(error.reason), f"not a framing error: {error!r} (cause {error.__cause__!r})"
        assert error.__cause__ is None, f"decoder bug surfaced as a protocol error: {error.__cause__!r}"
        # A failed decoder stays failed, with the same error.
        for again in (lambda: decoder.feed(b"JOIN"), decoder.end_of_stream):
            try:
                again()
            except RemoteProtocolError as exc:
                assert exc is error, "a failed decoder raised a different error"
            else:
                raise AssertionError("a failed decoder accepted more input")
    return out


def check_decoder(direction: Direction, data: bytes) -> Decoded:
    """Check every invariant on ``data``; the byte-by-byte decoding on success."""
    data = bytes(data)
    whole = decode(direction, data, [data] if data else [])
    single = decode(direction, data, [data[i : i + 1] for i in range(len(data))], spans=True)
    rng = random.Random(zlib.crc32(data))
    cuts = sorted({0, len(data), *(rng.randint(0, len(data)) for _ in range(rng.randint(0, 8)))})
    split = decode(direction, data, [data[a:b] for a, b in zip(cuts, cuts[1:])])
    interpreted = decode(direction, data, [data] if data else [], compiled=False)

    assert whole.key() == single.key(), f"whole {whole.key()} != byte by byte {single.key()}"
    assert whole.key() == split.key(), f"whole {whole.key()} != chunked at {cuts} {split.key()}"
    assert whole.key() == interpreted.key(), f"compiled {whole.key()} != interpreted {interpreted.key()}"

    # Exact re-encoding, packet by packet, tiling the stream.
    assert len(single.spans) == len(single.packets)
    end = 0
    for packet, (start, stop) in zip(single.packets, single.spans):
        assert start == end
        wire = encode(packet)
        assert wire == data[start:stop], f"{packet!r} re-encodes to {wire!r}, decoded from {data[start:stop]!r}"
        end = stop
    if whole.error is not None:
        assert whole.error.offset == end, f"error at offset {whole.error.offset}, last packet ended at {end}"
        if whole.raised_by == "end_of_stream":
            assert end < len(data)
    else:
        assert end == len(data), "decoded cleanly but did not consume every byte"
    return single
