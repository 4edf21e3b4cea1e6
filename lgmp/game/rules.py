"""The rule data of "Let's Go Marketing!", as data.

Everything here is a transcription of /work/shared/RULES.md (the authority) and is laid
out so a person can check it against that file line by line: the board by space
numbers, each deck card by card, the careers table row by row. No behaviour lives here
except two tiny look-ups (`find_career`, `wire_salary`); the engine (``lgmp.game.engine``)
applies the rules.

All mappings are read-only (``MappingProxyType``) and all sequences are tuples, so
nothing can change the rules at run time by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Mapping


# --------------------------------------------------------------------------- enums

class SpaceKind(IntEnum):
    """Kind of a board space; the value is its number on the wire (GAME, CARD type)."""

    PLAIN = 0            # nothing happens (also the start, space 0)
    BRAND_CRISIS = 1
    CAREER_POINT = 2
    YOURE_THE_BOSS = 3
    DID_YOU_KNOW = 4
    FINISH = 5


class Field(IntEnum):
    """A field of marketing; the value is its number on the wire (CARD action 2, CRER)."""

    DESIGN = 1
    PUBLIC_RELATIONS = 2
    BUSINESS_DATA_ANALYTICS = 3
    GRAPHIC_MEDIA_MANAGEMENT = 4
    MARKETING = 5
    ADVERTISING = 6


FIELD_NAMES: Mapping[Field, str] = MappingProxyType({
    Field.DESIGN: "Design",
    Field.PUBLIC_RELATIONS: "Public Relations",
    Field.BUSINESS_DATA_ANALYTICS: "Business Data Analytics",
    Field.GRAPHIC_MEDIA_MANAGEMENT: "Graphic Media Management",
    Field.MARKETING: "Marketing",
    Field.ADVERTISING: "Advertising",
})

FIELD_LETTERS: Mapping[Field, str] = MappingProxyType({
    Field.DESIGN: "D",
    Field.PUBLIC_RELATIONS: "P",
    Field.BUSINESS_DATA_ANALYTICS: "B",
    Field.GRAPHIC_MEDIA_MANAGEMENT: "G",
    Field.MARKETING: "M",
    Field.ADVERTISING: "A",
})

FIELD_COLOURS: Mapping[Field, str] = MappingProxyType({
    Field.DESIGN: "red",
    Field.PUBLIC_RELATIONS: "yellow",
    Field.BUSINESS_DATA_ANALYTICS: "pink",
    Field.GRAPHIC_MEDIA_MANAGEMENT: "green",
    Field.MARKETING: "purple",
    Field.ADVERTISING: "blue",
})

# The decks below are written with these letters, exactly as RULES.md writes them.
_BY_LETTER: Mapping[str, Field] = {letter: field for field, letter in FIELD_LETTERS.items()}


class Avatar(IntEnum):
    """A player's bulldog; the value is its number on the wire (REDY)."""

    RED = 1
    YELLOW = 2
    GREEN = 3
    BLUE = 4
    PURPLE = 5
    PINK = 6


AVATAR_NAMES: Mapping[Avatar, str] = MappingProxyType({a: a.name.capitalize() for a in Avatar})


class FinishCard(IntEnum):
    """The Finish deck's card numbers: dealt on reaching space 55, never answered."""

    FIRST = 1   # first player to finish (also a lone player)
    OTHER = 2   # everyone between first and last
    LAST = 3    # last player to finish, when there are 2+ players


# --------------------------------------------------------------------------- board

SEATS = range(1, 7)
BOARD_SIZE = 56
FINISH_SPACE = 55

# Did You Know spaces, by the pile (colour) they draw from, as in RULES.md's board table.
DID_YOU_KNOW_FIELD: Mapping[int, Field] = MappingProxyType({
    1: Field.MARKETING, 6: Field.MARKETING, 10: Field.MARKETING,
    15: Field.GRAPHIC_MEDIA_MANAGEMENT, 17: Field.GRAPHIC_MEDIA_MANAGEMENT,
    21: Field.DESIGN, 27: Field.DESIGN,
    32: Field.BUSINESS_DATA_ANALYTICS, 34: Field.BUSINESS_DATA_ANALYTICS,
    39: Field.PUBLIC_RELATIONS, 42: Field.PUBLIC_RELATIONS,
    46: Field.ADVERTISING, 50: Field.ADVERTISING,
})

_SPECIAL_SPACES: Mapping[SpaceKind, tuple[int, ...]] = {
    SpaceKind.BRAND_CRISIS: (18, 30),
    SpaceKind.CAREER_POINT: (4, 12, 25, 37, 53),
    SpaceKind.YOURE_THE_BOSS: (8, 11, 22, 29, 36, 41, 47),
    SpaceKind.DID_YOU_KNOW: tuple(sorted(DID_YOU_KNOW_FIELD)),
    SpaceKind.FINISH: (FINISH_SPACE,),
}


def _build_board() -> tuple[SpaceKind, ...]:
    board = [SpaceKind.PLAIN] * BOARD_SIZE
    for kind, spaces in _SPECIAL_SPACES.items():
        for space in spaces:
            # A space listed under two kinds would be a transcription error.
            assert board[space] is SpaceKind.PLAIN, f"space {space} listed twice"
            board[space] = kind
    return tuple(board)


BOARD: tuple[SpaceKind, ...] = _build_board()   # BOARD[space] -> kind, 56 entries

#: Landing on one of these deals a card that waits for answers: until it is
#: answered the turn stays with the mover (GAME shows that kind as its space).
CARD_SPACES: frozenset[SpaceKind] = frozenset(
    {SpaceKind.BRAND_CRISIS, SpaceKind.CAREER_POINT, SpaceKind.YOURE_THE_BOSS, SpaceKind.DID_YOU_KNOW}
)


# --------------------------------------------------------------------------- spinner

# The 12 equal wedges, clockwise as the original draws them.
SPINNER_WEDGES: tuple[int, ...] = (6, 3, 4, 6, 5, 4, 1, 5, 6, 3, 2, 4)


# --------------------------------------------------------------------------- decks

@dataclass(frozen=True, slots=True)
class BrandCrisisCard:
    """Moves the mover `move` spaces (always backward)."""

    number: int
    move: int


@dataclass(frozen=True, slots=True)
class CareerPointCard:
    """The mover picks option A or option B; each option is a move."""

    number: int
    option_a: int
    option_b: int


@dataclass(frozen=True, slots=True)
class YoureTheBossCard:
    """Every player picks one of `options` and gains a token of that field."""

    number: int
    options: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class DidYouKnowCard:
    """Every player may take one token of `field` (the pile's colour), or decline."""

    number: int   # 1..39 across all piles, in field order
    field: Field


BRAND_CRISIS_DECK: tuple[BrandCrisisCard, ...] = tuple(
    BrandCrisisCard(number, move) for number, move in (
        (1, -1), (2, -3), (3, -1), (4, -2), (5, -1), (6, -2),
        (7, -2), (8, -2), (9, -1), (10, -3), (11, -2), (12, -2),
    )
)

CAREER_POINT_DECK: tuple[CareerPointCard, ...] = tuple(
    CareerPointCard(number, a, b) for number, a, b in (
        (1, +2, 0), (2, -2, 0), (3, -1, 0), (4, +1, -1),
        (5, -1, 0), (6, +2, 0), (7, -1, +2), (8, 0, +2),
    )
)

_YTB_OPTIONS = {
    1: "AGBPM",
    2: "AGBPMD", 3: "AGBPMD", 5: "AGBPMD", 8: "AGBPMD",
    4: "APBDM", 6: "APBDM", 7: "APBDM",
}
YOURE_THE_BOSS_DECK: tuple[YoureTheBossCard, ...] = tuple(
    YoureTheBossCard(number, tuple(_BY_LETTER[letter] for letter in _YTB_OPTIONS[number]))
    for number in range(1, 9)
)

# Pile sizes, in field order; wire numbers run through the piles in this order.
DID_YOU_KNOW_PILE_SIZES: Mapping[Field, int] = MappingProxyType({
    Field.DESIGN: 7,                     # 1-7
    Field.PUBLIC_RELATIONS: 6,           # 8-13
    Field.BUSINESS_DATA_ANALYTICS: 6,    # 14-19
    Field.GRAPHIC_MEDIA_MANAGEMENT: 7,   # 20-26
    Field.MARKETING: 7,                  # 27-33
    Field.ADVERTISING: 6,                # 34-39
})
DID_YOU_KNOW_DECK: tuple[DidYouKnowCard, ...] = tuple(
    DidYouKnowCard(number, field)
    for number, field in enumerate(
        (field for field in Field for _ in range(DID_YOU_KNOW_PILE_SIZES[field])), start=1
    )
)
DID_YOU_KNOW_PILES: Mapping[Field, tuple[DidYouKnowCard, ...]] = MappingProxyType({
    field: tuple(card for card in DID_YOU_KNOW_DECK if card.field is field) for field in Field
})


# --------------------------------------------------------------------------- careers

@dataclass(frozen=True, slots=True)
class Career:
    name: str     # the catalogue's spelling (FINL sends it as is)
    field: Field
    salary: int   # dollars


def _careers(field: Field, *rows: tuple[str, int]) -> tuple[Career, ...]:
    return tuple(Career(name, field, salary) for name, salary in rows)


# Rows in RULES.md's order; each field's careers in the order the table lists them.
CAREERS: Mapping[Field, tuple[Career, ...]] = MappingProxyType({
    Field.ADVERTISING: _careers(
        Field.ADVERTISING,
        ("Marketing Research Specialist", 50_500),
        ("Freelance Writer", 49_400),
        ("Healthcare Marketer", 84_000),
        ("Advertising Account Manager", 62_252),
        ("Brand/Product Manager", 132_840),
        ("Sales Professional", 62_080),
    ),
    Field.MARKETING: _careers(
        Field.MARKETING,
        ("Advertising Account Manager", 62_252),
        ("Brand/Product Manager", 132_840),
        ("Sales Professional", 62_080),
        ("Creative Director", 132_770),
        ("Research Director", 117_000),
        ("Media Planner", 54_000),
    ),
    Field.PUBLIC_RELATIONS: _careers(
        Field.PUBLIC_RELATIONS,
        ("Marketing Research Specialist", 50_500),
        ("Marketing Director", 115_000),
        ("Sales Manager", 74_750),
        ("Content Strategist", 72_500),
        ("Corporate Communications Manager", 70_401),
        ("Public Relations Director", 82_800),
    ),
    Field.DESIGN: _careers(
        Field.DESIGN,
        ("Creative Director", 132_770),
        ("User Experience Designer", 90_700),
        ("User Interface Designer", 80_500),
    ),
    Field.GRAPHIC_MEDIA_MANAGEMENT: _careers(
        Field.GRAPHIC_MEDIA_MANAGEMENT,
        ("Graphic Media Technician", 49_000),
        ("Graphic Media Technical Sales Representative", 49_000),
        ("Customer Service Project Manager", 75_000),
    ),
    Field.BUSINESS_DATA_ANALYTICS: _careers(
        Field.BUSINESS_DATA_ANALYTICS,
        ("Business Data Analyst", 69_252),
        ("Market Research Analyst", 58_000),
        ("System Architect", 105_000),
    ),
})


def find_career(field: int, name: str) -> Career | None:
    """The career called `name` (any letter case) in `field`, or None if there is none."""
    if not isinstance(name, str) or field not in Field._value2member_map_:
        return None
    wanted = name.casefold()
    for career in CAREERS[Field(field)]:
        if career.name.casefold() == wanted:
            return career
    return None


def wire_salary(career: Career) -> int:
    """The salary as CRER and FINL carry it: whole thousands, rounded down."""
    return career.salary // 1000
