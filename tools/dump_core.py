"""The dumper's pure core: byte streams in, records out, records to lines.

Nothing here touches files, sockets or clocks; the CLI (``tools.dump``), the capture
reader (``tools.dump_capture``) and the live tap (``tools.dump_tap``) feed bytes in and
print what comes out, and the tests call these functions directly.

* ``StreamDumper`` decodes one direction of one stream incrementally (any chunking),
  keeping each packet's exact bytes (the decoder gives its stream offset and size). It
  is the only user of ``lgmp.wire.codec.Decoder`` in the dumper: the codec stays the
  one thing that parses LGMP.
* Bad bytes end decoding of that direction -- LGMP has no length prefix, so there is
  no way to find the next packet boundary -- and become an ``ErrorRecord`` carrying
  the codec's reason, tag and offset and the bytes that could not be decoded.
* ``format_text`` / ``format_json`` render a record as one output line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lgmp.wire.codec import BadBytes, Decoder, Dialect
from lgmp.wire.packets import Direction, Packet

from .dump_describe import Description, describe

C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
ARROWS = {C2S: "c>s", S2C: "s>c"}

#: Bad bytes shown in a text line without --hex: enough to recognise, not a wall of hex.
ERROR_PREVIEW = 16


# --- records ---------------------------------------------------------------------


@dataclass(slots=True)
class PacketRecord:
    """One decoded packet, where and when it was seen, and its exact bytes."""

    stream: str
    direction: Direction
    offset: int  # stream offset of the packet's first byte
    raw: bytes
    packet: Packet
    time: float | None = None  # seconds since the epoch; None for hex/raw input

    @property
    def description(self) -> Description:
        return describe(self.packet)


@dataclass(slots=True)
class ErrorRecord:
    """Bytes that could not be decoded; decoding of this direction stops here."""

    stream: str
    direction: Direction
    offset: int | None
    reason: str
    tag: str | None = None
    data: bytes = b""  # the undecodable bytes from ``offset`` on, as far as known
    time: float | None = None


@dataclass(slots=True)
class NoteRecord:
    """Something about a stream that is not a packet: a tap connection opening or closing."""

    stream: str
    event: str
    text: str
    time: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


Record = PacketRecord | ErrorRecord | NoteRecord


# --- decoding one direction of one stream ----------------------------------------------


class StreamDumper:
    """Sans-IO dumper for one direction of one stream: bytes in, records out.

    ``feed`` takes the next chunk and returns a record per packet it completes; bad
    bytes return an ``ErrorRecord`` after the packets before them, and every later
    ``feed`` returns nothing (the bytes still count in ``skipped``), so a caller that
    forwards bytes, like the tap, can keep doing so. ``close`` reports a packet cut
    short by the end. ``dialect``: what the stream speaks (v1.0 unless said).
    """

    def __init__(self, stream: str, direction: Direction, dialect: Dialect | None = None):
        self.stream = stream
        self.direction = direction
        self._decoder = Decoder(direction, dialect=dialect)
        # Bytes fed and not yet returned in a record (a partial packet, between feeds):
        # the decoder says where each packet is, these give its bytes, and an error
        # can show the bad ones.
        self._pending = bytearray()
        self._pending_offset = 0  # stream offset of _pending[0]
        self.failed: ErrorRecord | None = None
        self.skipped = 0  # bytes fed after the error, not decoded

    def feed(self, data: bytes, time: float | None = None) -> list[Record]:
        if self.failed is not None:
            self.skipped += len(data)
            return []
        self._pending += data
        decoder = self._decoder
        decoder.receive_data(data)
        records: list[Record] = []
        while (found := decoder.next_packet()) is not None:
            if isinstance(found, BadBytes):
                records.append(self._fail(found, time))
                return records
            start = found.offset - self._pending_offset
            raw = bytes(self._pending[start : start + found.size])
            records.append(PacketRecord(self.stream, self.direction, found.offset, raw, found.packet, time))
        del self._pending[: decoder.offset - self._pending_offset]
        self._pending_offset = decoder.offset
        return records

    def close(self, time: float | None = None) -> list[Record]:
        """The stream ended; report a packet it cut short."""
        if self.failed is not None:
            return []
        bad = self._decoder.end_of_stream()
        return [] if bad is None else [self._fail(bad, time)]

    def _fail(self, bad: BadBytes, time: float | None) -> ErrorRecord:
        data = bytes(self._pending[bad.offset - self._pending_offset :])
        self.failed = ErrorRecord(self.stream, self.direction, bad.offset, bad.reason, bad.tag, data, time)
        return self.failed


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes of a TCP stream that are not in the capture: nothing after them can be framed."""

    offset: int
    missing: int
    time: float | None = None
    after: int = 0  # captured bytes beyond the gap, left undecoded


def decode_chunks(
    stream: str,
    direction: Direction,
    chunks: Iterable[tuple[float | None, bytes]],
    gap: Gap | None = None,
    dialect: Dialect | None = None,
) -> list[Record]:
    """Records for one whole direction of a stream, given as timed chunks in order.

    Each packet gets the time of the chunk that completed it. On a decode error the
    rest of the direction is attached to the error record, so it shows every byte
    that was not decoded. ``gap`` marks where the captured stream has a hole.
    """
    dumper = StreamDumper(stream, direction, dialect)
    records: list[Record] = []
    last_time = None
    for time, data in chunks:
        last_time = time
        if dumper.failed is not None:
            # The whole direction is at hand, so the error can show every byte it left.
            dumper.failed.data += data
            continue
        records += dumper.feed(data, time)
    if dumper.failed is not None:
        return records
    if gap is not None:
        reason = f"{gap.missing} bytes missing from the capture; the rest cannot be framed"
        if gap.after:
            reason += f" ({gap.after} bytes not decoded)"
        records.append(ErrorRecord(stream, direction, gap.offset, reason, None, b"", gap.time))
        return records
    records += dumper.close(last_time)
    return records


def decode_bytes(stream: str, direction: Direction, data: bytes, dialect: Dialect | None = None) -> list[Record]:
    """Records for one whole direction of a stream held in memory (hex or raw input)."""
    return decode_chunks(stream, direction, [(None, data)], dialect=dialect)


@dataclass(frozen=True, slots=True)
class DirectionChoice:
    direction: Direction
    records: list[Record]
    explanation: str


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def choose_direction(stream: str, data: bytes, dialect: Dialect | None = None) -> DirectionChoice:
    """Decode ``data`` both ways and keep the direction that fits (``--direction auto``).

    The tags overlap (JOIN, REDY and CARD exist both ways), so an input may fit both
    or neither. Best is the one that decodes the whole input; next, one whose bytes
    all fit but stop inside a packet (a truncated sample of the right direction);
    next, the one that decodes further before its garbage; on a tie, client -> server,
    which is what a hand-written sample usually is.
    """
    tries: dict[Direction, tuple[tuple[int, int], list[Record], str]] = {}
    for direction in (C2S, S2C):
        dumper = StreamDumper(stream, direction, dialect)
        records = dumper.feed(data)
        arrow = ARROWS[direction]
        if dumper.failed is not None:
            score = (0, dumper.failed.offset or 0)
            summary = f"{arrow} stops at offset {dumper.failed.offset}: {dumper.failed.reason}"
        else:
            records += dumper.close()
            packets = _plural(len(records) - (dumper.failed is not None), "packet")
            if dumper.failed is None:
                score, summary = (2, len(data)), f"{arrow} decodes all {_plural(len(data), 'byte')} ({packets})"
            else:
                score, summary = (1, dumper.failed.offset or 0), f"{arrow} decodes {packets}, then {dumper.failed.reason}"
        tries[direction] = (score, records, summary)
    best = max((C2S, S2C), key=lambda d: tries[d][0])  # max keeps the first (C2S) on a tie
    other = S2C if best is C2S else C2S
    explanation = f"chose {ARROWS[best]}: {tries[best][2]}; {tries[other][2]}"
    return DirectionChoice(best, tries[best][1], explanation)


# --- hex text --------------------------------------------------------------------


class HexError(ValueError):
    """Text that is not hex: not a decoding problem but a wrong input (exit code 2)."""


_HEX_SEPARATORS = re.compile(r"[\s,:]+")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class HexInput:
    data: bytes
    odd_digit: str | None = None  # a dangling last digit, not part of any byte


def parse_hex(text: str) -> HexInput:
    """Hex text to bytes: whitespace, commas, colons, ``0x`` prefixes and ``#`` comments
    are tolerated. An odd digit count is not fatal (the bytes before it are decoded and
    the caller reports it); any other character raises ``HexError`` saying where."""
    digits = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        for token in _HEX_SEPARATORS.split(line):
            body = token[2:] if token[:2] in ("0x", "0X") else token
            match = _HEX_DIGITS.fullmatch(body)
            if match is None:
                bad = next(c for c in body if c not in "0123456789abcdefABCDEF")
                raise HexError(f"line {line_number}: {bad!r} in {token!r} is not a hex digit")
            digits.append(body)
    joined = "".join(digits)
    odd = joined[-1] if len(joined) % 2 else None
    return HexInput(bytes.fromhex(joined[: len(joined) - (odd is not None)]), odd)


def looks_like_hex(data: bytes) -> bool:
    """True if ``data`` is hex text (``--format auto``). Raw LGMP never is: every tag
    has a letter beyond F (JOIN, REDY, STRT, SPIN, CARD, CRER, GAME, FINL, RSET)."""
    if not data:
        return False
    try:
        parse_hex(data.decode("ascii"))
    except (UnicodeDecodeError, HexError):
        return False
    return True  # even if it is all comments: then it is an empty hex sample, not raw bytes


# --- output ------------------------------------------------------------------------


def format_time(time: float) -> str:
    """Capture or wall-clock time as HH:MM:SS.ffffff, UTC so dumps compare across machines."""
    return datetime.fromtimestamp(time, timezone.utc).strftime("%H:%M:%S.%f")


def _hex(data: bytes) -> str:
    return data.hex(" ")


def _where(record: PacketRecord | ErrorRecord) -> str:
    """Time if known, else the stream offset (hex and raw input have no clock)."""
    if record.time is not None:
        return format_time(record.time)
    return f"@{record.offset}" if record.offset is not None else "@?"


def format_text(record: Record, *, show_hex: bool = False) -> str:
    """One line: time or offset, stream, direction, then the packet in words."""
    if isinstance(record, NoteRecord):
        head = f"{format_time(record.time)} " if record.time is not None else ""
        return f"{head}{record.stream} -- {record.text}"
    head = f"{_where(record)} {record.stream} {ARROWS[record.direction]}"
    if isinstance(record, PacketRecord):
        line = f"{head} {record.description.line}"
        return f"{line}  | {_hex(record.raw)}" if show_hex else line
    where = f"at offset {record.offset}" if record.offset is not None else "at an unknown offset"
    tag = f" (tag {record.tag})" if record.tag is not None else ""
    line = f"{head} !! undecodable {where}{tag}: {record.reason}"
    if record.data:
        shown = record.data if show_hex else record.data[:ERROR_PREVIEW]
        more = " ..." if len(shown) < len(record.data) else ""
        line += f"  | {len(record.data)} bytes: {_hex(shown)}{more}"
    return line


def to_json(record: Record, *, show_hex: bool = False) -> dict[str, Any]:
    """The record as a JSON-ready dict: the same information as the text line, as fields."""
    if isinstance(record, NoteRecord):
        return {"time": record.time, "stream": record.stream, "event": record.event, "text": record.text, **record.details}
    out: dict[str, Any] = {
        "time": record.time,
        "stream": record.stream,
        "direction": ARROWS[record.direction],
        "offset": record.offset,
    }
    if isinstance(record, PacketRecord):
        description = record.description
        out.update(tag=description.tag, fields=description.fields, text=description.line)
        if show_hex:
            out["hex"] = record.raw.hex()
        return out
    # Undecodable bytes are always given in full: JSON is for programs, not eyes.
    out.update(error=record.reason, tag=record.tag, undecoded=record.data.hex(), undecoded_length=len(record.data))
    return out


def format_json(record: Record, *, show_hex: bool = False) -> str:
    return json.dumps(to_json(record, show_hex=show_hex), ensure_ascii=True)


def format_record(record: Record, *, as_json: bool = False, show_hex: bool = False) -> str:
    return format_json(record, show_hex=show_hex) if as_json else format_text(record, show_hex=show_hex)
