"""Which process owns a room code: the code's first letter names its shard. Pure.

Rooms live in one process each (their state and timers are in memory), and LGMP
has no redirect packet: a client stays on the connection it opened. So every
process that accepts connections must know, from the code alone, which process
owns a room -- without shared state, a lock or a network call. The first letter
of a code does it: each owner holds a fixed share of the 26 letters, draws new
codes only from its own letters, and a JOIN for any other letter goes to the
letter's owner (``lgmp.server.relay``).

A ``ShardPlan`` is one process's view of that table: who it is, who owns each
letter, and where each owner takes relayed connections. It is an immutable
value; a process whose table changes (a cluster's leases) swaps in a new plan
as a whole, so a lookup never sees half an update.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ..wire.packets import HOST_ROOM
from .names import ROOM_CODE_LENGTH, normalize_room_code

LETTERS = string.ascii_uppercase

#: Where an owner takes relayed connections: (host, port).
Address = tuple[str, int]

#: At most one owner per letter: every owner must have a letter to draw codes from.
MAX_OWNERS = len(LETTERS)


def deal_letters(owners: int) -> tuple[str, ...]:
    """The 26 letters dealt round-robin to ``owners`` owners: owner i gets letters
    i, i + owners, ... -- shares that differ by at most one letter."""
    if not 1 <= owners <= MAX_OWNERS:
        raise ValueError(f"between 1 and {MAX_OWNERS} owners can share the 26 code letters, not {owners}")
    return tuple(LETTERS[i::owners] for i in range(owners))


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """One process's routing table.

    ``owners[i]`` owns letter ``LETTERS[i]`` (``None``: nobody holds it now, so its
    codes exist nowhere and this process answers them itself: 4).
    ``addresses`` maps each other owner to the address of its relay listener.
    """

    me: str
    owners: tuple[str | None, ...]
    addresses: tuple[tuple[str, Address], ...]

    def __post_init__(self) -> None:
        if len(self.owners) != len(LETTERS):
            raise ValueError(f"a plan names an owner for each of the {len(LETTERS)} letters")
        known = {name for name, _ in self.addresses}
        missing = {o for o in self.owners if o is not None and o != self.me and o not in known}
        if missing:
            raise ValueError(f"no relay address for {', '.join(sorted(missing))}")

    @classmethod
    def for_workers(cls, index: int, addresses: list[Address] | tuple[Address, ...]) -> ShardPlan:
        """Worker ``index`` (0-based) of ``len(addresses)`` workers on one machine, named
        w1, w2...; worker i takes relayed connections at ``addresses[i]``."""
        names = [worker_name(i) for i in range(len(addresses))]
        shares = deal_letters(len(addresses))
        owner_of = {letter: names[i] for i, share in enumerate(shares) for letter in share}
        return cls(
            me=names[index],
            owners=tuple(owner_of[letter] for letter in LETTERS),
            addresses=tuple((name, tuple(address)) for name, address in zip(names, addresses)),
        )

    @property
    def letters(self) -> str:
        """The letters this process draws new codes from (possibly none)."""
        return "".join(letter for letter, owner in zip(LETTERS, self.owners) if owner == self.me)

    def letters_of(self, owner: str) -> str:
        return "".join(letter for letter, o in zip(LETTERS, self.owners) if o == owner)

    def owner_of(self, code: str) -> str | None:
        """The owner of a well-formed code's letter; None for anything that is not a
        four-letter code (``HOST``, a typo with a digit...) or whose letter nobody holds."""
        code = normalize_room_code(code)
        if len(code) != ROOM_CODE_LENGTH or code == HOST_ROOM or not all(c in LETTERS for c in code):
            return None
        return self.owners[LETTERS.index(code[0])]

    def route(self, code: str) -> tuple[str, Address] | None:
        """Where a JOIN for ``code`` must go: ``(owner, address)`` when another process
        owns it; None when this process answers it itself (its own letter, ``HOST``,
        or a code no process could own, which this process answers 4)."""
        owner = self.owner_of(code)
        if owner is None or owner == self.me:
            return None
        return owner, dict(self.addresses)[owner]


def worker_name(index: int) -> str:
    """Worker ``index`` (0-based) as logs and plans name it: w1, w2..."""
    return f"w{index + 1}"
