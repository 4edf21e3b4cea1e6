"""The LGMP v1.0 codec: the one place that turns packets into bytes and back.

Theory of operation
-------------------
Every packet is a 4-byte ASCII tag followed by a body whose layout is fixed by
(direction, tag). There is no length prefix, so a reader learns a packet's size
from its tag and from the ``uint8`` length bytes inside the body.

Each packet type is declared once, in ``DECLARATIONS``: its class, direction, tag
and a construct ``Struct`` whose fields are named as the class's fields. Everything
else is derived from that declaration:

* **the frame size**: ``lgmp.wire.framing`` reads the construct body once, at
  import, and folds it into either a fixed size (most packets) or a walk over the
  length bytes and conditions that decide it (uint8-prefixed text, the JOIN
  answer's room, FINL's six careers); also the largest size, hence
  ``MAX_PACKET_SIZE``;
* **parse**: the compiled body, whose fields go straight into the packet class;
* **build**: the packet's fields into the compiled body.

Decoding is therefore two steps:

1. **Framing** (plain Python, checks everything): look the tag up in the
   direction's table and find the frame's size. If the bytes so far are not a
   prefix of any tag, or the tag is unknown for this direction, the stream is not
   LGMP: ``BadBytes`` says where and why, at the first byte that proves it. If the
   frame is incomplete we wait; a frame is never larger than the direction's
   largest legal packet, so the bytes that wait unframed are bounded by it.
2. **Parsing** (construct): the body parses the proven-complete, exact-size frame.
   Compiled construct skips bounds checks, which is safe only because step 1
   already proved the frame complete and exact; we never hand it anything else.

A body that is only numbers and fixed-length byte runs (SPIN, JOIN, and the
server's GAME, CARD and REDY) is a *flat layout*: construct's compiler would emit
one ``struct`` call per field and build two contexts around them, so the codec
folds the declaration's fields into one ``struct.Struct`` (tag included) instead,
derived from the same construct nodes at import. The client's CARD is flat too:
its one condition tests its first byte, so it is tabulated for every byte value
and picks one of two formats. Tests hold every packet's bytes to construct's
interpreted build and parse.

``Decoder`` is pull-style and sans-IO, like h11: ``receive_data`` takes bytes,
``next_packet`` returns each whole packet with its stream offset and size, ``None``
when it needs more bytes, or ``BadBytes`` once the stream stops being LGMP; the
good packets before bad bytes all come out first. ``end_of_stream`` reports a
packet cut short.

Packets check their own fields when they are built (``lgmp.wire.packets``), so
``encode`` only lays them out. Text is ASCII on the wire; a peer's non-ASCII byte
decodes with ``surrogateescape`` so decoding never fails on content and
``encode(decode(b))`` gives ``b`` back; the room layer refuses such names.

Dialects
--------
A ``Dialect`` is a table of declarations, one per packet per direction. LGMP v1.0
(``V1_0``, the tuple ``DECLARATIONS``) is the default everywhere: ``encode(packet)``,
``Decoder(direction)`` and ``decode_all`` take ``dialect=`` only for another one
(``lgmp.wire.unity2022``), so the v1.0 path is the one it always was. A later
dialect shares v1.0's declarations where its bytes are the same and declares its
own packets (or another layout of a v1.0 packet class) beside them.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from operator import attrgetter
from typing import Any

from construct import (
    Adapter,
    Array,
    Bytes,
    Container,
    FormatField,
    GreedyBytes,
    If,
    IfThenElse,
    Int8sb,
    Int8ub,
    Prefixed,
    Rebuild,
    Renamed,
    Struct,
    this,
)

from ..frozen import set_directly
from .errors import LocalProtocolError, RemoteProtocolError
from .framing import Buffer, Extent, FrameSize, extent_of
from .packets import (
    BOARD_SPACES,
    ROOM_CODE_LENGTH,
    SEAT_COUNT,
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

__all__ = [
    "DECLARATIONS",
    "MAX_PACKET_SIZE",
    "TAG_LENGTH",
    "V1_0",
    "BadBytes",
    "Declaration",
    "Decoded",
    "Decoder",
    "Dialect",
    "decode_all",
    "direction_of",
    "encode",
    "encode_all",
    "tag_of",
]

TAG_LENGTH = 4  # every packet starts with a 4-byte ASCII tag

# --- field types: construct nodes whose values are the packets' own ---------------


class _WireText(Adapter):
    """Bytes as ``str``: ASCII, and any other byte as a surrogate escape, so all bytes round-trip."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> str:
        return obj.decode("ascii", "surrogateescape")

    def _encode(self, obj: str, context: Any, path: Any) -> bytes:
        return obj.encode("ascii", "surrogateescape")

    # construct compiles only what knows how to emit itself; the rest it calls interpreted.
    def _emitparse(self, code: Any) -> str:
        return f"({self.subcon._compileparse(code)}).decode('ascii', 'surrogateescape')"

    def _emitbuild(self, code: Any) -> str:
        return f"(reuse(obj.encode('ascii', 'surrogateescape'), lambda obj: ({self.subcon._compilebuild(code)})), obj)[1]"


class _ByteTuple(Adapter):
    """A run of bytes as a tuple of ints 0..255 (the seat arrays, the board)."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> tuple[int, ...]:
        return tuple(obj)

    def _encode(self, obj: tuple[int, ...], context: Any, path: Any) -> bytes:
        return bytes(obj)

    def _emitparse(self, code: Any) -> str:
        return f"tuple({self.subcon._compileparse(code)})"

    def _emitbuild(self, code: Any) -> str:
        return f"(reuse(bytes(obj), lambda obj: ({self.subcon._compilebuild(code)})), obj)[1]"


class _Tuple(Adapter):
    """An ``Array`` as a tuple (packets are frozen, so their sequences are tuples)."""

    def _decode(self, obj: list[Any], context: Any, path: Any) -> tuple[Any, ...]:
        return tuple(obj)

    def _encode(self, obj: tuple[Any, ...], context: Any, path: Any) -> tuple[Any, ...]:
        return obj

    def _emitparse(self, code: Any) -> str:
        return f"tuple({self.subcon._compileparse(code)})"

    def _emitbuild(self, code: Any) -> str:
        return self.subcon._compilebuild(code)


_u8 = Int8ub
_text = _WireText(Prefixed(Int8ub, GreedyBytes))  # uint8 length + that many bytes
_room_code = _WireText(Bytes(ROOM_CODE_LENGTH))
_seats = _ByteTuple(Bytes(SEAT_COUNT))  # one byte per seat 1..6
_board = _ByteTuple(Bytes(BOARD_SPACES))  # one occupancy count per space 0..55

# --- the declarations: each packet once ------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Declaration:
    """One packet type on the wire: its class, direction, tag and body layout.

    The body's fields are named, in order, as the class's fields. Two exceptions,
    both for layouts a later dialect chose: a ``Rebuild`` field is computed from the
    others when built (a length that is not right before its text) and is no field
    of the class; and ``reordered=True`` says the wire carries the class's fields
    in another order (said explicitly, so a swapped declaration is still caught).
    Its frame size is derived from the body here; its parser and builder when
    first used.
    """

    packet_type: type
    direction: Direction
    tag: bytes
    body: Struct
    reordered: bool = False
    #: The whole packet's size when no byte of it decides the size, else None.
    fixed_size: int | None = field(init=False, repr=False)
    #: The most bytes the packet can take, tag included.
    largest: int = field(init=False, repr=False)
    #: ``frame_size(buf, pos, end)``: the size of the packet starting at ``buf[pos]``
    #: once ``buf[pos:end]`` holds the bytes that decide it, else None.
    frame_size: FrameSize = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = self.class_field_names
        declared = tuple(getattr(sub, "name", None) for sub in self.body.subcons if not _derived(sub))
        if (sorted(declared) != sorted(names)) if self.reordered else (declared != names):
            raise TypeError(f"{self.packet_type.__name__}: body fields {declared} are not the class's fields {names}")
        if len(self.tag) != TAG_LENGTH:
            raise TypeError(f"{self.packet_type.__name__}: tag {self.tag!r} is not {TAG_LENGTH} bytes")
        extent = extent_of(self.body)
        fixed = None if extent.fixed is None else TAG_LENGTH + extent.fixed
        object.__setattr__(self, "fixed_size", fixed)
        object.__setattr__(self, "largest", TAG_LENGTH + extent.largest)
        object.__setattr__(self, "frame_size", _whole_frame(extent))

    @property
    def field_names(self) -> tuple[str, ...]:
        """The packet's fields, in wire order (without fields computed when built)."""
        return tuple(sub.name for sub in self.body.subcons if not _derived(sub))

    @property
    def class_field_names(self) -> tuple[str, ...]:
        """The packet's fields, in the class's order."""
        return tuple(f.name for f in dataclasses.fields(self.packet_type))

    @property
    def in_class_order(self) -> bool:
        """The body holds exactly the class's fields, in its order (the compiled parser's fast path)."""
        return tuple(getattr(sub, "name", None) for sub in self.body.subcons) == self.class_field_names


def _derived(sub: Any) -> bool:
    """A field computed from the others when built (``"length" / Rebuild(...)``)."""
    return isinstance(getattr(sub, "subcon", None), Rebuild)


def _whole_frame(body: Extent) -> FrameSize:
    """The frame-size function of a packet (tag included) with this body."""

    def frame_size(buf: Buffer, pos: int, end: int) -> int | None:
        stop = body.walk(buf, pos + TAG_LENGTH, end, {})
        return None if stop is None else stop - pos

    return frame_size


_C2S, _S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT

# (Conditions compare with plain ints: compiled construct writes them into source by repr.)
DECLARATIONS: tuple[Declaration, ...] = (
    Declaration(JoinRequest, _C2S, b"JOIN", Struct("room" / _room_code)),
    Declaration(ReadyRequest, _C2S, b"REDY", Struct("name" / _text, "avatar" / _u8)),
    Declaration(StartGame, _C2S, b"STRT", Struct()),
    Declaration(Spin, _C2S, b"SPIN", Struct("number" / _u8)),
    # The value is a signed move for action 1 and a field (unsigned) otherwise.
    Declaration(
        CardAnswer, _C2S, b"CARD",
        Struct("action" / _u8, "value" / IfThenElse(this.action == int(CardAction.MOVE), Int8sb, Int8ub)),
    ),
    Declaration(CareerChoice, _C2S, b"CRER", Struct("field" / _u8, "career" / _text, "salary" / _u8)),
    # The room code follows only when the answer is "you are the host".
    Declaration(
        JoinResponse, _S2C, b"JOIN",
        Struct("response" / _u8, "room" / If(this.response == int(JoinAnswer.HOST), _room_code)),
    ),
    Declaration(ReadyResponse, _S2C, b"REDY", Struct("response" / _u8, "avatars" / _seats)),
    Declaration(GameUpdate, _S2C, b"GAME", Struct("turn" / _u8, "space" / _u8, "occupancy" / _board)),
    Declaration(CardDealt, _S2C, b"CARD", Struct("kind" / _u8, "number" / _u8)),
    Declaration(
        FinalResults, _S2C, b"FINL",
        Struct("places" / _seats, "careers" / _Tuple(Array(SEAT_COUNT, _text)), "salaries" / _seats),
    ),
    Declaration(Reset, _S2C, b"RSET", Struct()),
)

_BY_TYPE: dict[type, Declaration] = {d.packet_type: d for d in DECLARATIONS}

#: The largest legal packet per direction: the most bytes that may ever wait unframed.
MAX_PACKET_SIZE: dict[Direction, int] = {
    direction: max(d.largest for d in DECLARATIONS if d.direction is direction) for direction in Direction
}

# Every packet class of every dialect: its tag and direction are the same wherever it is declared.
_TAGS: dict[type, tuple[bytes, Direction]] = {d.packet_type: (d.tag, d.direction) for d in DECLARATIONS}


def tag_of(packet: Packet | type) -> str:
    """The 4-letter tag ``packet`` (or a packet class) is sent with, in any dialect that has it."""
    kind = packet if isinstance(packet, type) else type(packet)
    return _TAGS[kind][0].decode("ascii")


def direction_of(packet: Packet) -> Direction:
    """Which way ``packet`` travels."""
    return _TAGS[type(packet)][1]


class Dialect:
    """A table of declarations, one per packet per direction: what a client speaks.

    Encoders are made when a packet type is first encoded; decoding tables when a
    ``Decoder`` for a direction is first made.
    """

    def __init__(self, name: str, declarations: Iterable[Declaration]):
        self.name = name
        self.declarations = tuple(declarations)
        self._by_type: dict[type, Declaration] = {}
        for d in self.declarations:
            if d.packet_type in self._by_type:
                raise TypeError(f"{name}: {d.packet_type.__name__} is declared twice")
            self._by_type[d.packet_type] = d
            known = _TAGS.setdefault(d.packet_type, (d.tag, d.direction))
            if known != (d.tag, d.direction):
                raise TypeError(f"{name}: {d.packet_type.__name__} is {known} in another dialect")
        for direction in Direction:
            tags = [d.tag for d in self.declarations if d.direction is direction]
            if len(tags) != len(set(tags)):
                raise TypeError(f"{name}: one layout per tag per direction")
        #: The largest legal packet per direction: the most bytes that may ever wait unframed.
        self.max_packet_size: dict[Direction, int] = {
            direction: max(d.largest for d in self.declarations if d.direction is direction) for direction in Direction
        }
        self._encoders: dict[type, Callable[[Packet], bytes]] = {}

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"

    def declaration_of(self, packet_type: type) -> Declaration | None:
        return self._by_type.get(packet_type)

    def packet_types(self, direction: Direction) -> tuple[type, ...]:
        """The classes this dialect sends that way, in declaration order."""
        return tuple(d.packet_type for d in self.declarations if d.direction is direction)

    def encode(self, packet: Packet) -> bytes:
        """The bytes of ``packet`` in this dialect."""
        encoder = self._encoders.get(type(packet))
        if encoder is None:
            declaration = self._by_type.get(type(packet))
            if declaration is None:
                raise LocalProtocolError(f"not a packet of {self.name}: {type(packet).__name__}")
            encoder = self._encoders[declaration.packet_type] = _encoder(declaration)
        return encoder(packet)


# --- parse and build, derived from a declaration ---------------------------------------
# construct's parse() and build() wrap every call in a context that refers to
# itself (``_params`` and ``_root``), so each packet left cyclic garbage that only
# the cycle collector frees; under load that meant long full collections. We call
# the compiled functions with a context of our own whose ``_root`` is already set
# (to None: no layout here refers to it), so nothing refers back to itself and
# reference counting frees every temporary at once.
_PARSE_CONTEXT = Container(_parsing=True, _building=False, _sizing=False, _params=Container(), _root=None, _index=None)
_BUILD_CONTEXT = Container(_parsing=False, _building=True, _sizing=False, _params=Container(), _root=None, _index=None)

#: ``parser(buf, start, stop)``: the packet whose body is ``buf[start:stop]``, a
#: proven-complete, exact frame (after its tag).
Parser = Callable[[Buffer, int, int], Packet]


@dataclass(frozen=True, slots=True)
class _FlatLayout:
    """A body of numbers and fixed-length byte runs, as one ``struct`` format.

    ``to_python``/``to_wire`` hold, per field, the adapter's conversion of the run
    of bytes (None for a number, which ``struct`` reads and writes as is). A body
    whose one condition (an ``IfThenElse`` between two numbers of one size) tests
    its first field, a byte, has two formats: ``chosen[first byte]`` tells whether
    this one applies or ``otherwise``.
    """

    body: struct.Struct  # the body alone: parsing reads from just after the tag
    whole: struct.Struct  # the tag and the body: building writes the packet at once
    to_python: tuple[Callable[[bytes], Any] | None, ...]
    to_wire: tuple[Callable[[Any], bytes] | None, ...]
    chosen: tuple[bool, ...] | None = None
    otherwise: _FlatLayout | None = None


def _ascii_text(raw: bytes) -> str:
    return raw.decode("ascii", "surrogateescape")


def _ascii_bytes(text: str) -> bytes:
    return text.encode("ascii", "surrogateescape")


def _number_format(node: Any) -> str | None:
    """The struct code of a number field, or None when ``node`` is not one."""
    if isinstance(node, FormatField) and (node.length == 1 or node.fmtstr[0] in ">!"):
        return node.fmtstr[-1]  # one byte has no byte order; longer ones are big-endian
    return None


def _flat_layout(body: Struct) -> _FlatLayout | None:
    """``body`` as one struct format (or two, see ``_FlatLayout``), or None when
    bytes inside it decide its layout in any other way."""
    then_formats, else_formats, to_python, to_wire = [], [], [], []
    condition = None
    for sub in body.subcons:
        node = sub.subcon if isinstance(sub, Renamed) else None
        number = _number_format(node)
        if number is not None:
            then_formats.append(number)
            else_formats.append(number)
            to_python.append(None)
            to_wire.append(None)
            continue
        if isinstance(node, IfThenElse) and condition is None:
            then, otherwise = _number_format(node.thensubcon), _number_format(node.elsesubcon)
            if then is None or otherwise is None or node.thensubcon.length != node.elsesubcon.length:
                return None
            condition = node.condfunc
            then_formats.append(then)
            else_formats.append(otherwise)
            to_python.append(None)
            to_wire.append(None)
            continue
        run = node.subcon if isinstance(node, (_ByteTuple, _WireText)) else None
        if not (isinstance(run, Bytes) and isinstance(run.length, int)):
            return None
        then_formats.append(f"{run.length}s")  # packets were checked when built: every run has its length
        else_formats.append(f"{run.length}s")
        to_python.append(tuple if isinstance(node, _ByteTuple) else _ascii_text)
        to_wire.append(bytes if isinstance(node, _ByteTuple) else _ascii_bytes)

    def layout(formats: list[str], **choice: Any) -> _FlatLayout:
        joined = "".join(formats)
        return _FlatLayout(struct.Struct(">" + joined), struct.Struct(f">{TAG_LENGTH}s" + joined),
                           tuple(to_python), tuple(to_wire), **choice)

    if condition is None:
        return layout(then_formats)
    first = body.subcons[0]
    if then_formats[0] != "B" or any(to_python) or not callable(condition):
        return None
    try:  # the condition may read the first field only: tabulate it for every byte
        chosen = tuple(bool(condition({first.name: value})) for value in range(256))
    except Exception:
        return None
    return layout(then_formats, chosen=chosen, otherwise=layout(else_formats))


def _parser(declaration: Declaration, compiled: bool) -> Parser:
    """(buffer, start, stop) of a proven-complete, exact body -> packet."""
    make = declaration.packet_type
    if not declaration.field_names:
        empty = make()  # nothing to parse; packets are immutable, so one serves every time
        return lambda buf, start, stop: empty
    names = declaration.class_field_names
    # One struct format serves a fixed layout whose fields come in the class's order.
    flat = _flat_layout(declaration.body) if compiled and declaration.in_class_order else None
    if flat is not None and flat.chosen is not None:
        chosen, then_unpack, else_unpack = flat.chosen, flat.body.unpack_from, flat.otherwise.body.unpack_from
        return lambda buf, start, stop: make(*(then_unpack if chosen[buf[start]] else else_unpack)(buf, start))
    if flat is not None:
        unpack_from, to_python = flat.body.unpack_from, flat.to_python
        if not any(to_python):
            return lambda buf, start, stop: make(*unpack_from(buf, start))

        def flat_parser(buf: Buffer, start: int, stop: int) -> Packet:
            values = unpack_from(buf, start)
            return make(*[value if convert is None else convert(value) for convert, value in zip(to_python, values)])

        return flat_parser
    if compiled:
        parse = declaration.body.compile().parsefunc
        if declaration.in_class_order:

            def parser(buf: Buffer, start: int, stop: int) -> Packet:
                # A compiled Struct's result holds exactly its named fields, in order.
                return make(*parse(BytesIO(buf[start:stop]), _PARSE_CONTEXT).values())

            return parser

        def by_name(buf: Buffer, start: int, stop: int) -> Packet:
            # Another order, or a length computed when built: take the class's fields by name.
            fields = parse(BytesIO(buf[start:stop]), _PARSE_CONTEXT)
            return make(*[fields[name] for name in names])

        return by_name
    parse_interpreted = declaration.body.parse

    def interpreted(buf: Buffer, start: int, stop: int) -> Packet:
        # The interpreted Struct's result also carries its stream (``_io``): take the fields by name.
        fields = parse_interpreted(buf[start:stop])
        return make(*[fields[name] for name in names])

    return interpreted


def _encoder(declaration: Declaration) -> Callable[[Packet], bytes]:
    tag, names = declaration.tag, declaration.field_names
    if not names:
        return lambda packet: tag
    flat = _flat_layout(declaration.body)
    if flat is not None:
        return _flat_encoder(tag, names, flat)
    build = declaration.body.compile().buildfunc
    values = attrgetter(*names)
    if len(names) == 1:
        (name,) = names
        fields_of = lambda packet: {name: values(packet)}  # noqa: E731
    else:
        fields_of = lambda packet: dict(zip(names, values(packet)))  # noqa: E731

    def encoder(packet: Packet) -> bytes:
        out = BytesIO()
        out.write(tag)
        build(fields_of(packet), out, _BUILD_CONTEXT)
        return out.getvalue()

    return encoder


def _flat_encoder(tag: bytes, names: tuple[str, ...], flat: _FlatLayout) -> Callable[[Packet], bytes]:
    pack, to_wire = flat.whole.pack, flat.to_wire
    if flat.chosen is not None:  # numbers only, the first one choosing the format
        chosen, else_pack, values = flat.chosen, flat.otherwise.whole.pack, attrgetter(*names)

        def chosen_encoder(packet: Packet) -> bytes:
            fields = values(packet)
            return (pack if chosen[fields[0]] else else_pack)(tag, *fields)

        return chosen_encoder
    if len(names) == 1:
        (name,) = names
        (convert,) = to_wire
        if convert is None:
            return lambda packet: pack(tag, getattr(packet, name))
        return lambda packet: pack(tag, convert(getattr(packet, name)))
    values = attrgetter(*names)
    if not any(to_wire):
        return lambda packet: pack(tag, *values(packet))
    if to_wire[:-1] == (None,) * (len(names) - 1):  # numbers, then one run (GAME, REDY)
        last = to_wire[-1]

        def numbers_then_run(packet: Packet) -> bytes:
            *numbers, run = values(packet)
            return pack(tag, *numbers, last(run))

        return numbers_then_run

    def flat_encoder(packet: Packet) -> bytes:
        return pack(tag, *[value if convert is None else convert(value) for convert, value in zip(to_wire, values(packet))])

    return flat_encoder


_ENCODERS: dict[type, Callable[[Packet], bytes]] = {}

#: LGMP v1.0: the default dialect.
V1_0 = Dialect("v1.0", DECLARATIONS)


def encode(packet: Packet, dialect: Dialect | None = None) -> bytes:
    """The bytes of ``packet`` (which checked its fields when it was built), in v1.0
    unless ``dialect`` says otherwise."""
    if dialect is not None and dialect is not V1_0:
        return dialect.encode(packet)
    encoder = _ENCODERS.get(type(packet))
    if encoder is None:
        declaration = _BY_TYPE.get(type(packet))
        if declaration is None:
            raise LocalProtocolError(f"not an LGMP packet: {type(packet).__name__}")
        encoder = _ENCODERS[declaration.packet_type] = _encoder(declaration)
    return encoder(packet)


def encode_all(packets: Iterable[Packet], dialect: Dialect | None = None) -> bytes:
    """The concatenated bytes of ``packets``."""
    if dialect is not None and dialect is not V1_0:
        return b"".join(map(dialect.encode, packets))
    return b"".join(map(encode, packets))


# --- decoding ----------------------------------------------------------------------------


@set_directly  # one for every packet received
@dataclass(frozen=True, slots=True)
class Decoded:
    """One whole packet and where it was in the stream."""

    packet: Packet
    offset: int  # stream offset of its first (tag) byte
    size: int  # its bytes, tag included


@dataclass(frozen=True, slots=True)
class BadBytes:
    """The stream is not LGMP from ``offset`` on. Without a length prefix there is no
    finding the next packet, so it stays so: the decoder returns this every time after."""

    reason: str
    tag: str  # printable form of the offending tag (or the bytes that begin none)
    offset: int

    def error(self) -> RemoteProtocolError:
        """The same, as an exception, for callers that raise."""
        return RemoteProtocolError(self.reason, tag=self.tag, offset=self.offset)


@dataclass(frozen=True, slots=True)
class _Table:
    """The decode path for one direction: tag -> (fixed size or frame-size walk, parser)."""

    entries: dict[bytes, tuple[int | FrameSize, Parser]]
    tag_prefixes: frozenset[bytes]  # every proper prefix of a tag, to refuse garbage at its first byte


@cache
def _table(dialect: Dialect, direction: Direction, compiled: bool) -> _Table:
    declarations = [d for d in dialect.declarations if d.direction is direction]
    entries = {
        d.tag: (d.fixed_size if d.fixed_size is not None else d.frame_size, _parser(d, compiled)) for d in declarations
    }
    prefixes = frozenset(d.tag[:n] for d in declarations for n in range(1, TAG_LENGTH))
    return _Table(entries, prefixes)


class Decoder:
    """Incremental, pull-style, sans-IO decoder for one direction of one byte stream.

    ``receive_data`` takes the next bytes (any chunking); ``next_packet`` returns the
    next whole packet as ``Decoded``, ``None`` when it needs more bytes, or ``BadBytes``
    once the stream is not LGMP: every good packet before the bad bytes comes out
    first, and the ``BadBytes`` is returned again on every later call. Call
    ``next_packet`` until it returns ``None`` before receiving more: then at most one
    partial packet waits, so ``buffered`` stays below the direction's largest legal
    packet. ``end_of_stream`` reports a packet the stream cut short. ``dialect``
    chooses the declarations (v1.0 by default).
    """

    def __init__(self, direction: Direction, *, compiled: bool = True, dialect: Dialect | None = None):
        self.direction = direction
        self.dialect = dialect or V1_0
        table = _table(self.dialect, direction, compiled)
        self._entries, self._tag_prefixes = table.entries, table.tag_prefixes
        self._unknown_tag = f"unknown tag for {direction.value}"
        self._buffer = b""  # received bytes; those before _start are decoded
        self._start = 0
        self._base = 0  # stream offset of _buffer[0]
        self._last_size = 0  # of the packet take_packet returned last
        self._failed: BadBytes | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet decoded (of a partial packet, once drained)."""
        return len(self._buffer) - self._start

    @property
    def offset(self) -> int:
        """Stream offset of the next undecoded byte."""
        return self._base + self._start

    @property
    def failed(self) -> BadBytes | None:
        """Where the stream stopped being LGMP, once it has."""
        return self._failed

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """The next bytes of the stream. After bad bytes they are dropped: nothing
        after them can be framed."""
        if self._failed is not None or not data:
            return
        start = self._start
        self._base += start
        if start == len(self._buffer):
            self._buffer = bytes(data)  # the usual case: the last read ended on a packet boundary
        else:
            self._buffer = self._buffer[start:] + data
        self._start = 0

    def next_packet(self) -> Decoded | BadBytes | None:
        """The next whole packet; None until more bytes arrive; BadBytes from bad bytes on."""
        found = self.take_packet()
        if found is None or found.__class__ is BadBytes:
            return found
        size = self._last_size
        return Decoded(found, self._base + self._start - size, size)

    def take_packet(self) -> Packet | BadBytes | None:
        """As ``next_packet``, but the packet alone, without where it was in the stream:
        for a reader that needs no offsets (the server, per packet)."""
        if self._failed is not None:
            return self._failed
        buf, pos = self._buffer, self._start
        end = len(buf)
        if end - pos < TAG_LENGTH:
            if pos < end and buf[pos:end] not in self._tag_prefixes:
                return self._fail("bytes that begin no LGMP tag", buf[pos:end], pos)
            return None
        tag = buf[pos : pos + TAG_LENGTH]
        entry = self._entries.get(tag)
        if entry is None:
            return self._fail(self._unknown_tag, tag, pos)
        size, parse = entry
        if size.__class__ is not int:
            size = size(buf, pos, end)
            if size is None:
                return None
        stop = pos + size
        if stop > end:
            return None
        try:
            # The frame is complete and exact: safe for compiled construct.
            packet = parse(buf, pos + TAG_LENGTH, stop)
        except Exception as exc:  # pragma: no cover - a bug (framing and layout disagree), reported in protocol terms
            return self._fail(f"undecodable body: {exc!r}", tag, pos)
        self._start = stop
        self._last_size = size
        return packet

    def end_of_stream(self) -> BadBytes | None:
        """The stream ended: ``BadBytes`` if it ended inside a packet (or in bad bytes).

        Call it once ``next_packet`` returned None: whole packets still waiting are a
        mistake of the caller's, not the peer's, and raise ``RuntimeError``.
        """
        if self._failed is not None or not self.buffered:
            return self._failed
        start = self._start
        found = self.next_packet()
        if isinstance(found, Decoded):
            self._start = start  # left for next_packet
            raise RuntimeError("end_of_stream with whole packets waiting: call next_packet until it returns None")
        if found is not None:
            return found
        buf = self._buffer
        return self._fail(f"stream ended inside a packet ({self.buffered} bytes of it)", buf[start : start + TAG_LENGTH], start)

    def _fail(self, reason: str, tag: bytes, pos: int) -> BadBytes:
        self._failed = BadBytes(reason, _show(tag), self._base + pos)
        return self._failed


def _show(raw: bytes) -> str:
    """A tag for an error message: ASCII as is, anything else escaped."""
    return repr(bytes(raw))[2:-1]


def decode_all(direction: Direction, data: bytes, *, compiled: bool = True, dialect: Dialect | None = None) -> list[Packet]:
    """Decode a whole stream that must end on a packet boundary (for tests and tools);
    ``RemoteProtocolError`` if it does not."""
    decoder = Decoder(direction, compiled=compiled, dialect=dialect)
    decoder.receive_data(data)
    packets: list[Packet] = []
    while (found := decoder.next_packet()) is not None:
        if isinstance(found, BadBytes):
            raise found.error()
        packets.append(found.packet)
    bad = decoder.end_of_stream()
    if bad is not None:
        raise bad.error()
    return packets
