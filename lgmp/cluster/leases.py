"""Who should hold which code letters: the cluster's lease decisions. Pure.

Each member (a node, or each worker of a node) holds a share of the 26 code letters
under leases in Redis (``lgmp.cluster.registry``) and draws new room codes only from
them (``lgmp.rooms.shards``). Every renewal a member reads the table -- who holds
each letter, who is alive -- and decides here what to change:

* **Fair share**: ``ceil(26 / live members)`` letters each, so every letter has an
  owner and the shares differ by at most one (rounding up: a member that dies
  leaves nothing unowned for long).
* **Acquire** free letters up to the share: the member's preferred letters first
  (``--prefer-letters``, so a load balancer that routes on letters finds the owner),
  then letters nobody alive prefers, then other members' preferred ones. Ties are
  broken by a hash of (member, letter): two members filling up at the same moment
  reach for different letters instead of colliding on A, B, C.
* **Drain** letters above the share (a member joined): new rooms stop using them at
  once, letters another live member prefers going first, then those with the fewest
  rooms here; a drained letter is **released** only once none of this member's rooms
  uses it -- a room's code must keep naming the process that has the room.

``creating_letters`` is what new rooms may use right now: held, not draining, and
with a lease that has not run out by the local clock (a member that cannot reach
Redis stops creating rooms when its leases would have expired there).
"""

from __future__ import annotations

import hashlib
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass

LETTERS = string.ascii_uppercase

#: Safety margin on the local lease clock: a lease is taken as lapsed this fraction
#: of its TTL before Redis would expire it, for clocks that do not run at exactly the
#: same rate and for the time a renewal spends in flight after it was counted from.
CLOCK_MARGIN = 0.05


@dataclass(frozen=True, slots=True)
class Member:
    id: str  # its relay address, "host:port": what other members connect to
    prefer: str = ""  # letters it prefers to hold


@dataclass(frozen=True, slots=True)
class Table:
    """One reading of the cluster's state."""

    owners: tuple[str | None, ...]  # owners[i]: the member holding LETTERS[i] (None: free)
    members: tuple[Member, ...]  # the live members, this one included

    def __post_init__(self) -> None:
        if len(self.owners) != len(LETTERS):
            raise ValueError(f"a table names an owner (or None) for each of the {len(LETTERS)} letters")

    def owner(self, letter: str) -> str | None:
        return self.owners[LETTERS.index(letter)]

    def with_owner(self, letters: str, owner: str | None) -> Table:
        owners = list(self.owners)
        for letter in letters:
            owners[LETTERS.index(letter)] = owner
        return Table(tuple(owners), self.members)


@dataclass(frozen=True, slots=True)
class Moves:
    acquire: str  # free letters to try to lease (SET NX)
    drain: str  # held letters new rooms must not use any more
    release: str  # drained letters without rooms here: give them up now


def fair_share(members: int) -> int:
    return math.ceil(len(LETTERS) / max(1, members))


def parse_letters(text: str) -> str:
    """``--prefer-letters``: letters and ranges, ``A-M`` or ``AEIOU`` or ``A-C,X``;
    the distinct letters in alphabetical order."""
    letters: set[str] = set()
    for part in text.upper().replace(",", " ").split():
        i = 0
        while i < len(part):
            if i + 2 < len(part) and part[i + 1] == "-":
                first, last = part[i], part[i + 2]
                if first not in LETTERS or last not in LETTERS or first > last:
                    raise ValueError(f"not a letter range: {part[i:i + 3]!r}")
                letters.update(LETTERS[LETTERS.index(first): LETTERS.index(last) + 1])
                i += 3
            else:
                if part[i] not in LETTERS:
                    raise ValueError(f"not a letter A-Z: {part[i]!r}")
                letters.add(part[i])
                i += 1
    return "".join(sorted(letters))


def _spread(me: str, letter: str) -> bytes:
    return hashlib.blake2b(f"{me}/{letter}".encode(), digest_size=4).digest()


def plan_moves(me: str, prefer: str, table: Table, held: str, rooms_per_letter: Mapping[str, int]) -> Moves:
    """What ``me`` (holding ``held``, preferring ``prefer``) should change after reading ``table``."""
    share = fair_share(len(table.members))
    preferred_by_others = {letter for m in table.members if m.id != me for letter in m.prefer}
    if len(held) < share:
        free = [letter for letter in LETTERS if table.owner(letter) is None and letter not in held]
        free.sort(key=lambda letter: (letter not in prefer, letter in preferred_by_others, _spread(me, letter)))
        return Moves(acquire="".join(free[: share - len(held)]), drain="", release="")
    if len(held) > share:
        order = sorted(held, key=lambda letter: (letter not in preferred_by_others, letter in prefer,
                                                 rooms_per_letter.get(letter, 0), letter))
        drain = "".join(sorted(order[: len(held) - share]))
        release = "".join(letter for letter in drain if rooms_per_letter.get(letter, 0) == 0)
        return Moves(acquire="", drain=drain, release=release)
    return Moves(acquire="", drain="", release="")


def creating_letters(expiries: Mapping[str, float], draining: str, now: float) -> str:
    """The letters new rooms may use at ``now``: leased (by the local clock) and not draining."""
    return "".join(sorted(letter for letter, expiry in expiries.items() if expiry > now and letter not in draining))


def local_expiry(sent_at: float, ttl: float) -> float:
    """When a lease renewed by a request sent at ``sent_at`` lapses, by the local clock:
    counted from before Redis saw the request, less the margin."""
    return sent_at + ttl * (1 - CLOCK_MARGIN)
