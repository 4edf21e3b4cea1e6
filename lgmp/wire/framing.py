"""How long is a packet? Frame sizes derived from construct declarations.

LGMP has no length prefix: a packet's size follows from its layout and, for the
variable parts, from bytes inside it. ``extent_of`` reads a construct body once and
folds it into an ``Extent``: a fixed size when no byte decides it (most packets),
else a *walk* over just the bytes that do -- unsigned length prefixes, the numbers
a condition tests, repeated parts -- and the largest size it can reach. The framer
runs the walk on received bytes before anything parses them, so the codec hands
construct only frames proven complete and exact.

A part's walk takes the buffer, the offset where the part starts and the end of
the bytes received, and returns the offset just past the part, or None while the
bytes that decide it have not all arrived. It never reads at or beyond ``end``.
``fields`` holds the numbers read so far in the enclosing Struct (construct's
``this``), for the conditions and lengths that follow them. A length may be a
uint8 prefix right before its bytes (``Prefixed``) or a number declared earlier in
the same Struct (``Bytes(this.length)``, with other fields between: a later
dialect's REDY puts the avatar between the name's length and the name). Only
layouts the framer can size from bytes already seen are accepted; anything else
is refused with ``TypeError`` when the packet is declared, not when a peer sends it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from construct import (
    Adapter,
    Array,
    Bytes,
    Construct,
    FormatField,
    GreedyBytes,
    IfThenElse,
    Pass,
    Prefixed,
    Rebuild,
    Renamed,
    Struct,
)
from construct.expr import Path

Buffer = bytes | bytearray | memoryview
Walk = Callable[[Buffer, int, int, dict[str, int]], "int | None"]
FrameSize = Callable[[Buffer, int, int], "int | None"]
#: The numbers declared so far in the enclosing Struct, by name: the largest value each can hold.
Scope = dict[str, int]


@dataclass(frozen=True, slots=True)
class Extent:
    """How many bytes one part of a body spans."""

    fixed: int | None  # the size, when no byte inside decides it
    largest: int
    walk: Walk


def _fixed(size: int) -> Extent:
    return Extent(size, size, lambda buf, at, end, fields: at + size)


def _number(name: str, number: FormatField) -> Extent:
    """A named number: fixed size, and read (when walking) for the conditions after it."""
    size, unpack_from = number.length, struct.Struct(number.fmtstr).unpack_from

    def walk(buf: Buffer, at: int, end: int, fields: dict[str, int]) -> int | None:
        if at + size > end:
            return None
        fields[name] = unpack_from(buf, at)[0]
        return at + size

    return Extent(size, size, walk)


def _counted(name: str, largest: int) -> Extent:
    """``Bytes(this.name)``: as many bytes as the number ``name`` read earlier says."""

    def walk(buf: Buffer, at: int, end: int, fields: dict[str, int]) -> int | None:
        return at + fields[name]  # the number was walked (so received) before this part

    return Extent(None, largest, walk)


def _length_name(length: object, scope: Scope) -> str:
    """The earlier number a ``Bytes`` length names (``this.length``), or TypeError."""
    read: list[str] = []

    class _Recorder(dict):
        def __getitem__(self, key: str) -> int:
            read.append(key)
            return 0

    if isinstance(length, Path):
        length(_Recorder())
    if len(read) != 1 or read[0] not in scope:
        raise TypeError(f"the framer cannot size Bytes({length!r}): a length must be an unsigned number declared before it")
    return read[0]


def _length_prefixed(length_field: FormatField) -> Extent:
    """A length (an unsigned number) and that many bytes."""
    if not length_field.fmtstr[-1].isupper():  # struct's unsigned formats are upper case
        raise TypeError(f"the framer needs an unsigned length, not {length_field.fmtstr!r}")
    size, unpack_from = length_field.length, struct.Struct(length_field.fmtstr).unpack_from

    def walk(buf: Buffer, at: int, end: int, fields: dict[str, int]) -> int | None:
        if at + size > end:
            return None
        return at + size + unpack_from(buf, at)[0]

    return Extent(None, size + 256**size - 1, walk)  # the length at its largest


def _sequence(parts: list[Extent]) -> Extent:
    """A Struct's fields one after another; the Struct is the scope of their names."""
    largest = sum(p.largest for p in parts)
    if all(p.fixed is not None for p in parts):
        return _fixed(largest)

    def walk(buf: Buffer, at: int, end: int, outer: dict[str, int]) -> int | None:
        fields: dict[str, int] = {}  # this Struct's own names: construct's ``this`` inside it
        for part in parts:
            after = part.walk(buf, at, end, fields)
            if after is None:
                return None
            at = after
        return at

    return Extent(None, largest, walk)


def _repeat(count: int, item: Extent) -> Extent:
    """An Array: the same part ``count`` times."""
    if item.fixed is not None:
        return _fixed(count * item.fixed)

    def walk(buf: Buffer, at: int, end: int, fields: dict[str, int]) -> int | None:
        for _ in range(count):
            after = item.walk(buf, at, end, fields)
            if after is None:
                return None
            at = after
        return at

    return Extent(None, count * item.largest, walk)


def _either(condition: Any, then: Extent, otherwise: Extent) -> Extent:
    """IfThenElse (and If, whose ``otherwise`` is Pass): one part or the other."""
    if then.fixed is not None and then.fixed == otherwise.fixed:
        return then  # the same size either way: the condition does not matter to the framer

    def walk(buf: Buffer, at: int, end: int, fields: dict[str, int]) -> int | None:
        # A construct condition (``this.response == 1``) reads the numbers walked so far.
        chosen = condition(fields) if callable(condition) else condition
        return (then if chosen else otherwise).walk(buf, at, end, fields)

    return Extent(None, max(then.largest, otherwise.largest), walk)


def _unsigned_largest(number: FormatField) -> int | None:
    """The largest value of an unsigned number; None for a signed one (it cannot be a length)."""
    return 256**number.length - 1 if number.fmtstr[-1].isupper() else None


def extent_of(node: Construct, scope: Scope | None = None) -> Extent:
    """The extent of ``node``, a construct declaration; ``TypeError`` if the framer cannot size it.

    ``scope`` is the enclosing Struct's numbers declared so far (it gains each named
    unsigned number met), so a later ``Bytes(this.name)`` can be sized."""
    scope = {} if scope is None else scope
    if isinstance(node, Renamed):
        number = node.subcon.subcon if isinstance(node.subcon, Rebuild) else node.subcon  # a length computed when built
        if isinstance(number, FormatField):
            largest = _unsigned_largest(number)
            if largest is not None:
                scope[node.name] = largest
            return _number(node.name, number)
    if isinstance(node, (Renamed, Adapter, Rebuild)):
        return extent_of(node.subcon, scope)
    if isinstance(node, FormatField):
        return _fixed(node.length)
    if isinstance(node, Bytes) and isinstance(node.length, int):
        return _fixed(node.length)
    if isinstance(node, Bytes):
        name = _length_name(node.length, scope)
        return _counted(name, scope[name])
    if node is Pass:
        return _fixed(0)
    if isinstance(node, Struct):
        inner: Scope = {}  # a Struct is the scope of its own names (construct's ``this``)
        return _sequence([extent_of(sub, inner) for sub in node.subcons])
    if isinstance(node, Array) and isinstance(node.count, int):
        return _repeat(node.count, extent_of(node.subcon, {}))
    if (
        isinstance(node, Prefixed)
        and isinstance(node.lengthfield, FormatField)
        and node.subcon is GreedyBytes
        and not node.includelength
    ):
        return _length_prefixed(node.lengthfield)
    if isinstance(node, IfThenElse):
        # Numbers inside a branch may not be there: nothing after the branch may count on them.
        return _either(node.condfunc, extent_of(node.thensubcon, dict(scope)), extent_of(node.elsesubcon, dict(scope)))
    raise TypeError(f"the framer cannot size {node!r}")
