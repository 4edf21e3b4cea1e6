"""The LGMP v1.0 codec: the one place that turns packets into bytes and back.

Theory of operation
-------------------
Every packet is a 4-byte ASCII tag followed by a body whose layout is fixed by
(direction, tag). There is no length prefix, so a reader learns a packet's size
from its tag and from the ``uint8`` length bytes inside the body. Decoding is
therefore two steps:

1. **Framing** (plain Python, checks everything): look the tag up in the
   direction's table, then walk the body's length bytes until the total size is
   known. If the bytes so far are not a prefix of any tag, or the tag is unknown
   for this direction, the stream is not LGMP and ``RemoteProtocolError`` says
   where and why. If the frame is incomplete we wait; a frame can never be
   larger than the direction's largest legal packet, so the bytes that wait
   unframed are bounded by construction.
2. **Parsing** (construct): the declarations below parse the proven-complete,
   exact-size frame. Compiled construct skips bounds checks, which is safe only
   because step 1 already proved the frame complete and well-formed; we never
   hand it anything else.

Encoding validates every field (ranges, ASCII, array sizes) and raises
``LocalProtocolError`` with the field's name before construct builds the bytes.

Text is ASCII on the wire. A peer's non-ASCII byte decodes with
``surrogateescape`` so decoding never fails on content and ``encode(decode(b))``
gives ``b`` back; the room layer rejects such names as invalid characters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from construct import (
    Array,
    Bytes,
    Construct,
    Container,
    GreedyBytes,
    If,
    IfThenElse,
    Int8sb,
    Int8ub,
    Prefixed,
    Struct,
    this,
)

from .errors import LocalProtocolError, RemoteProtocolError
from .packets import (
    CardAction,
    CardAnswer,
    CardDealt,
    CareerChoice,
    Direction,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    Packet,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)

SEAT_COUNT = 6  # seat-indexed arrays (REDY avatars, FINL) have one entry per seat 1..6
BOARD_SPACES = 56  # GAME carries one occupancy count per board space 0..55
ROOM_CODE_LENGTH = 4  # JOIN carries the room as exactly four ASCII bytes
TEXT_MAX = 255  # variable text is prefixed by a uint8 length
TAG_LENGTH = 4

# --- construct declarations: the wire layout, one place --------------------

_u8 = Int8ub
_text = Prefixed(Int8ub, GreedyBytes)  # uint8 length + that many ASCII bytes
# Arrays of uint8 are declared as raw bytes: the same layout, and ``bytes(tuple)``
# builds (and range-checks) them in one C call instead of one struct call each.
_seats = Bytes(SEAT_COUNT)

CLIENT_BODIES: dict[bytes, Construct] = {
    b"JOIN": Struct("room" / Bytes(ROOM_CODE_LENGTH)),
    b"REDY": Struct("name" / _text, "avatar" / _u8),
    b"STRT": Struct(),
    b"SPIN": Struct("number" / _u8),
    # The value is a signed move for action 1 and a field (unsigned) otherwise.
    b"CARD": Struct("action" / _u8, "value" / IfThenElse(this.action == int(CardAction.MOVE), Int8sb, Int8ub)),
    b"CRER": Struct("field" / _u8, "career" / _text, "salary" / _u8),
}

SERVER_BODIES: dict[bytes, Construct] = {
    # The room code follows only when the answer is "you are the host".
    b"JOIN": Struct("response" / _u8, "room" / If(this.response == int(JoinAnswer.HOST), Bytes(ROOM_CODE_LENGTH))),
    b"REDY": Struct("response" / _u8, "avatars" / _seats),
    b"GAME": Struct("turn" / _u8, "space" / _u8, "occupancy" / Bytes(BOARD_SPACES)),
    b"CARD": Struct("kind" / _u8, "number" / _u8),
    b"FINL": Struct("places" / _seats, "careers" / Array(SEAT_COUNT, _text), "salaries" / _seats),
    b"RSET": Struct(),
}

# --- framing: how long is the packet that starts at buf[pos]? ---------------
# Each function returns the packet's total size (tag included) once the bytes
# that decide it are present, else None. Sizes are bounded by the layouts above.

FrameSize = Callable[[bytes | bytearray, int, int], int | None]


def _fixed(size: int) -> FrameSize:
    def frame_size(buf: bytes | bytearray, pos: int, end: int) -> int | None:
        return size

    return frame_size


def _text_at(offset: int, tail: int) -> FrameSize:
    """A text whose length byte is at ``offset``, followed by ``tail`` bytes."""

    def frame_size(buf: bytes | bytearray, pos: int, end: int) -> int | None:
        if pos + offset >= end:
            return None
        return offset + 1 + buf[pos + offset] + tail

    return frame_size


def _server_join_size(buf: bytes | bytearray, pos: int, end: int) -> int | None:
    if pos + 4 >= end:
        return None
    return 9 if buf[pos + 4] == JoinAnswer.HOST else 5


def _final_results_size(buf: bytes | bytearray, pos: int, end: int) -> int | None:
    at = pos + TAG_LENGTH + SEAT_COUNT  # first career's length byte
    for _ in range(SEAT_COUNT):
        if at >= end:
            return None
        at += 1 + buf[at]
    return at + SEAT_COUNT - pos


CLIENT_FRAMES: dict[bytes, FrameSize] = {
    b"JOIN": _fixed(8),
    b"REDY": _text_at(4, 1),
    b"STRT": _fixed(4),
    b"SPIN": _fixed(5),
    b"CARD": _fixed(6),
    b"CRER": _text_at(5, 1),
}

SERVER_FRAMES: dict[bytes, FrameSize] = {
    b"JOIN": _server_join_size,
    b"REDY": _fixed(11),
    b"GAME": _fixed(6 + BOARD_SPACES),
    b"CARD": _fixed(6),
    b"FINL": _final_results_size,
    b"RSET": _fixed(4),
}

#: The largest legal packet per direction: the most bytes that may ever wait unframed.
MAX_PACKET_SIZE = {
    Direction.CLIENT_TO_SERVER: TAG_LENGTH + 1 + 1 + TEXT_MAX + 1,  # CRER, 255-byte career
    Direction.SERVER_TO_CLIENT: TAG_LENGTH + SEAT_COUNT + SEAT_COUNT * (1 + TEXT_MAX) + SEAT_COUNT,  # FINL
}

# --- text ------------------------------------------------------------------


def _text_from_wire(raw: bytes) -> str:
    return raw.decode("ascii", "surrogateescape")


def _text_to_wire(field: str, value: Any, *, exact: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{field} must be str, not {type(value).__name__}")
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{field} must be ASCII: {value!r}") from exc
    if exact is not None and len(raw) != exact:
        raise LocalProtocolError(f"{field} must be exactly {exact} bytes, got {len(raw)}")
    if len(raw) > TEXT_MAX:
        raise LocalProtocolError(f"{field} must be at most {TEXT_MAX} bytes, got {len(raw)}")
    return raw


def _check_int(field: str, value: Any, low: int = 0, high: int = 255) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LocalProtocolError(f"{field} must be int, not {type(value).__name__}")
    if not low <= value <= high:
        raise LocalProtocolError(f"{field} must be in {low}..{high}, got {value}")
    return value


def _check_ints(field: str, values: Any, count: int) -> Any:
    if not isinstance(values, (tuple, list)) or len(values) != count:
        raise LocalProtocolError(f"{field} must be a sequence of {count} ints")
    try:
        bytes(values)  # fast path: C checks every entry is an int in 0..255
    except (TypeError, ValueError):
        for i, v in enumerate(values):  # slow path, only to name the bad entry
            _check_int(f"{field}[{i}]", v)
    return values


# --- per-packet specification: tag, parse and build --------------------------


@dataclass(frozen=True, slots=True)
class PacketSpec:
    """How one packet type maps to its tag and its construct body."""

    packet_type: type
    direction: Direction
    tag: bytes
    from_fields: Callable[[Any], Packet]  # parsed construct container -> packet
    to_fields: Callable[[Any], dict[str, Any]]  # packet -> validated construct fields


def _card_answer_fields(p: CardAnswer) -> dict[str, Any]:
    action = _check_int("action", p.action)
    low, high = (-128, 127) if action == CardAction.MOVE else (0, 255)
    return {"action": action, "value": _check_int("value", p.value, low, high)}


def _join_response_fields(p: JoinResponse) -> dict[str, Any]:
    response = _check_int("response", p.response)
    if response == JoinAnswer.HOST:
        return {"response": response, "room": _text_to_wire("room", p.room, exact=ROOM_CODE_LENGTH)}
    if p.room is not None:
        raise LocalProtocolError("room is sent only with response 1 (host)")
    return {"response": response, "room": None}


def _final_results_fields(p: FinalResults) -> dict[str, Any]:
    if not isinstance(p.careers, (tuple, list)) or len(p.careers) != SEAT_COUNT:
        raise LocalProtocolError(f"careers must be a sequence of {SEAT_COUNT} str")
    return {
        "places": bytes(_check_ints("places", p.places, SEAT_COUNT)),
        "careers": [_text_to_wire(f"careers[{i}]", c) for i, c in enumerate(p.careers)],
        "salaries": bytes(_check_ints("salaries", p.salaries, SEAT_COUNT)),
    }


_C2S, _S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT

SPECS: tuple[PacketSpec, ...] = (
    PacketSpec(
        JoinRequest, _C2S, b"JOIN",
        lambda c: JoinRequest(_text_from_wire(c.room)),
        lambda p: {"room": _text_to_wire("room", p.room, exact=ROOM_CODE_LENGTH)},
    ),
    PacketSpec(
        ReadyRequest, _C2S, b"REDY",
        lambda c: ReadyRequest(_text_from_wire(c.name), c.avatar),
        lambda p: {"name": _text_to_wire("name", p.name), "avatar": _check_int("avatar", p.avatar)},
    ),
    PacketSpec(StartGame, _C2S, b"STRT", lambda c: StartGame(), lambda p: {}),
    PacketSpec(
        Spin, _C2S, b"SPIN",
        lambda c: Spin(c.number),
        lambda p: {"number": _check_int("number", p.number)},
    ),
    PacketSpec(CardAnswer, _C2S, b"CARD", lambda c: CardAnswer(c.action, c.value), _card_answer_fields),
    PacketSpec(
        CareerChoice, _C2S, b"CRER",
        lambda c: CareerChoice(c.field, _text_from_wire(c.career), c.salary),
        lambda p: {
            "field": _check_int("field", p.field),
            "career": _text_to_wire("career", p.career),
            "salary": _check_int("salary", p.salary),
        },
    ),
    PacketSpec(
        JoinResponse, _S2C, b"JOIN",
        lambda c: JoinResponse(c.response, None if c.room is None else _text_from_wire(c.room)),
        _join_response_fields,
    ),
    PacketSpec(
        ReadyResponse, _S2C, b"REDY",
        lambda c: ReadyResponse(c.response, tuple(c.avatars)),
        lambda p: {"response": _check_int("response", p.response), "avatars": bytes(_check_ints("avatars", p.avatars, SEAT_COUNT))},
    ),
    PacketSpec(
        GameUpdate, _S2C, b"GAME",
        lambda c: GameUpdate(c.turn, c.space, tuple(c.occupancy)),
        lambda p: {
            "turn": _check_int("turn", p.turn),
            "space": _check_int("space", p.space),
            "occupancy": bytes(_check_ints("occupancy", p.occupancy, BOARD_SPACES)),
        },
    ),
    PacketSpec(
        CardDealt, _S2C, b"CARD",
        lambda c: CardDealt(c.kind, c.number),
        lambda p: {"kind": _check_int("kind", p.kind), "number": _check_int("number", p.number)},
    ),
    PacketSpec(
        FinalResults, _S2C, b"FINL",
        lambda c: FinalResults(tuple(c.places), tuple(_text_from_wire(t) for t in c.careers), tuple(c.salaries)),
        _final_results_fields,
    ),
    PacketSpec(Reset, _S2C, b"RSET", lambda c: Reset(), lambda p: {}),
)

_SPEC_BY_TYPE: dict[type, PacketSpec] = {spec.packet_type: spec for spec in SPECS}
_BODIES = {_C2S: CLIENT_BODIES, _S2C: SERVER_BODIES}
_FRAMES = {_C2S: CLIENT_FRAMES, _S2C: SERVER_FRAMES}


# construct's parse() and build() wrap every call in a context that refers to
# itself (``_params`` and ``_root``), so each packet left cyclic garbage that only
# the cycle collector frees; under load that meant long full collections. We call
# the compiled functions with a context of our own whose ``_root`` is already set
# (to None: no layout here refers to it), so nothing refers back to itself and
# reference counting frees every temporary at once.
_PARSE_CONTEXT = Container(_parsing=True, _building=False, _sizing=False, _params=Container(), _root=None, _index=None)
_BUILD_CONTEXT = Container(_parsing=False, _building=True, _sizing=False, _params=Container(), _root=None, _index=None)


def _compiled_parser(body: Construct) -> Callable[[bytes], Any]:
    parse = body.compile().parsefunc

    def parser(data: bytes) -> Any:
        return parse(BytesIO(data), _PARSE_CONTEXT)

    return parser


def _compiled_builder(body: Construct) -> Callable[[dict[str, Any]], bytes]:
    build = body.compile().buildfunc

    def builder(fields: dict[str, Any]) -> bytes:
        out = BytesIO()
        build(fields, out, _BUILD_CONTEXT)
        return out.getvalue()

    return builder


class _Layouts:
    """The parse path for one direction: tag -> (frame size, parser, spec)."""

    def __init__(self, direction: Direction, *, compiled: bool):
        bodies = _BODIES[direction]
        self.frames = _FRAMES[direction]
        self.parsers = {tag: (_compiled_parser(body) if compiled else body.parse) for tag, body in bodies.items()}
        self.specs = {spec.tag: spec for spec in SPECS if spec.direction is direction}
        # Every proper prefix of a tag, so garbage is refused at its first byte.
        self.tag_prefixes = {tag[:n] for tag in self.frames for n in range(1, TAG_LENGTH)}
        self.max_packet = MAX_PACKET_SIZE[direction]


_LAYOUTS: dict[tuple[Direction, bool], _Layouts] = {}


def _layouts(direction: Direction, compiled: bool) -> _Layouts:
    key = (direction, compiled)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = _Layouts(direction, compiled=compiled)
    return _LAYOUTS[key]


_BUILDERS: dict[type, Callable[[dict[str, Any]], bytes]] = {}


def encode(packet: Packet) -> bytes:
    """The bytes of ``packet``; ``LocalProtocolError`` if LGMP cannot carry it."""
    spec = _SPEC_BY_TYPE.get(type(packet))
    if spec is None:
        raise LocalProtocolError(f"not an LGMP packet: {type(packet).__name__}")
    build = _BUILDERS.get(spec.packet_type)
    if build is None:
        build = _BUILDERS[spec.packet_type] = _compiled_builder(_BODIES[spec.direction][spec.tag])
    return spec.tag + build(spec.to_fields(packet))


def tag_of(packet: Packet) -> str:
    """The 4-letter tag ``packet`` is sent with."""
    return _SPEC_BY_TYPE[type(packet)].tag.decode("ascii")


def direction_of(packet: Packet) -> Direction:
    """Which way ``packet`` travels."""
    return _SPEC_BY_TYPE[type(packet)].direction


class Decoder:
    """Incremental, sans-IO decoder for one direction of one byte stream.

    Feed it any chunking of the stream; it returns complete packets in order and
    keeps a partial packet until its remaining bytes arrive. At most one partial
    packet waits, so the buffer never holds more than the direction's largest
    legal packet after ``feed`` returns.

    Bad bytes raise ``RemoteProtocolError`` naming the tag, the stream offset
    and the reason; the packets decoded before them in the same ``feed`` are on
    the error's ``packets`` attribute, so nothing good is lost. After an error
    the decoder stays failed: there is no resynchronising without a length
    prefix.
    """

    def __init__(self, direction: Direction, *, compiled: bool = True):
        self.direction = direction
        self._layouts = _layouts(direction, compiled)
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0]
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of a partial packet waiting for the rest."""
        return len(self._buffer)

    @property
    def offset(self) -> int:
        """Stream offset of the next byte to be decoded."""
        return self._offset

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet]:
        """Take the next bytes of the stream; return every packet they complete."""
        if self._error is not None:
            raise self._error
        buf = self._buffer
        buf += data
        layouts = self._layouts
        frames, parsers, specs = layouts.frames, layouts.parsers, layouts.specs
        packets: list[Packet] = []
        pos, end = 0, len(buf)
        try:
            while pos < end:
                if end - pos < TAG_LENGTH:
                    partial = bytes(buf[pos:end])
                    if partial not in layouts.tag_prefixes:
                        self._fail("bytes that begin no LGMP tag", partial, pos)
                    break
                tag = bytes(buf[pos : pos + TAG_LENGTH])
                frame_size = frames.get(tag)
                if frame_size is None:
                    self._fail(f"unknown tag for {self.direction.value}", tag, pos)
                size = frame_size(buf, pos, end)
                if size is None or pos + size > end:
                    break
                spec = specs[tag]
                # The frame is complete and exact: safe for compiled construct.
                packets.append(spec.from_fields(parsers[tag](bytes(buf[pos + TAG_LENGTH : pos + size]))))
                pos += size
        except RemoteProtocolError as exc:
            exc.packets = packets
            raise
        except Exception as exc:  # pragma: no cover - a bug, reported in protocol terms
            error = RemoteProtocolError(f"undecodable body: {exc!r}", tag=_show(buf[pos : pos + 4]), offset=self._offset + pos)
            error.packets = packets
            self._error = error
            raise error from exc
        del buf[:pos]
        self._offset += pos
        return packets

    def end_of_stream(self) -> None:
        """The stream ended: raise if a packet was cut short."""
        if self._error is not None:
            raise self._error
        if self._buffer:
            tag = _show(self._buffer[:TAG_LENGTH])
            error = RemoteProtocolError(f"stream ended inside a packet ({len(self._buffer)} bytes of it)", tag=tag, offset=self._offset)
            error.packets = []
            self._error = error
            raise error

    def _fail(self, reason: str, tag: bytes, pos: int) -> None:
        self._error = RemoteProtocolError(reason, tag=_show(tag), offset=self._offset + pos)
        raise self._error


def _show(raw: bytes | bytearray) -> str:
    """A tag for an error message: ASCII as is, anything else escaped."""
    return repr(bytes(raw))[2:-1]


def decode_all(direction: Direction, data: bytes, *, compiled: bool = True) -> list[Packet]:
    """Decode a whole stream that must end on a packet boundary."""
    decoder = Decoder(direction, compiled=compiled)
    packets = decoder.feed(data)
    try:
        decoder.end_of_stream()
    except RemoteProtocolError as exc:
        exc.packets = packets
        raise
    return packets


def encode_all(packets: Iterable[Packet]) -> bytes:
    """The concatenated bytes of ``packets``."""
    return b"".join(encode(p) for p in packets)


# Pull-style decoding (receive_data / next_packet), for now on top of ``feed``;
# the codec rework makes it the decoder's own API.
@dataclass(frozen=True, slots=True)
class Decoded:
    packet: Packet
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BadBytes:
    reason: str
    tag: str
    offset: int

    def error(self) -> RemoteProtocolError:
        return RemoteProtocolError(self.reason, tag=self.tag, offset=self.offset)


def _receive_data(self, data):
    self._pending_q = getattr(self, "_pending_q", [])
    if getattr(self, "_bad", None) is not None:
        return
    try:
        self._pending_q += [Decoded(p, 0, 0) for p in self.feed(data)]
    except RemoteProtocolError as exc:
        self._pending_q += [Decoded(p, 0, 0) for p in exc.packets]
        self._bad = BadBytes(exc.reason, exc.tag or "", exc.offset or 0)


def _next_packet(self):
    q = getattr(self, "_pending_q", [])
    if q:
        return q.pop(0)
    return getattr(self, "_bad", None)


Decoder.receive_data = _receive_data
Decoder.next_packet = _next_packet
