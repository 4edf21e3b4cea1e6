"""The rules of "Let's Go Marketing!" as data, and the look-ups every module asks them by.

The data is a transcription of /work/shared/RULES.md (the authority), laid out so a
person can check it against that file line by line: the board by space numbers, each
deck card by card, the careers table row by row.

The look-ups below the data are the one place each rule question is answered, so the
engine, the clients, the tools and the tests never work an answer out again:

* a card by kind and number: `card`, `find_card` (and `DECKS`);
* how a card is answered: `card.action` (the CARD action), `card_answers`, and by
  whom: `card.everyone_answers` (else the mover alone);
* what the server answers for a player who does not: `default_answer`,
  `default_field`, `default_career`; which Finish card a place gets: `finish_card`;
* the spinner: `draw_spin`, `SPIN_NUMBERS`;
* careers and salaries: `find_career`, `ALL_CAREERS`, `wire_salary`, `career_salary`;
* words for people: `SPACE_NAMES`, `FIELD_NAMES`, `AVATAR_NAMES`, `FINISH_CARD_NAMES`,
  `token_name`, `format_salary`, `ordinal`, and a dealt card in words: `card_title`,
  `card_text` (every screen, page and dump says a card the same way).

The engine (``lgmp.game.engine``) applies the rules; nothing here keeps state. All
mappings are read-only (``MappingProxyType``) and all sequences are tuples, so nothing
can change the rules at run time by accident.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import ClassVar, Mapping

# The CARD action numbers are WIRE.md's; the packets module defines them.
from ..wire.packets import CardAction


# --------------------------------------------------------------------------- enums

class SpaceKind(IntEnum):
    """Kind of a board space; the value is its number on the wire (GAME, CARD type)."""

    PLAIN = 0            # nothing happens (also the start, space 0)
    BRAND_CRISIS = 1
    CAREER_POINT = 2
    YOURE_THE_BOSS = 3
    DID_YOU_KNOW = 4
    FINISH = 5


#: What people call each kind of space (and the deck it deals from).
SPACE_NAMES: Mapping[SpaceKind, str] = MappingProxyType({
    SpaceKind.PLAIN: "Plain",
    SpaceKind.BRAND_CRISIS: "Brand Crisis",
    SpaceKind.CAREER_POINT: "Career Point",
    SpaceKind.YOURE_THE_BOSS: "You're the Boss",
    SpaceKind.DID_YOU_KNOW: "Did You Know",
    SpaceKind.FINISH: "Finish",
})


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


#: What each Finish card says.
FINISH_CARD_NAMES: Mapping[FinishCard, str] = MappingProxyType({
    FinishCard.FIRST: "first to finish",
    FinishCard.OTHER: "finished",
    FinishCard.LAST: "last to finish",
})


# --------------------------------------------------------------------------- board

SEATS = range(1, 7)

#: The avatar numbers a REDY may name.
AVATAR_NUMBERS = frozenset(int(a) for a in Avatar)
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

#: The numbers a spin may be (SPIN carries one): every wedge's.
SPIN_NUMBERS: range = range(1, 7)
assert set(SPINNER_WEDGES) == set(SPIN_NUMBERS)


# --------------------------------------------------------------------------- decks

# Each card class says which space deals it (`kind`, CARD's card type), which CARD
# action answers it (`action`) and whether every player answers it or the mover alone
# (`everyone_answers`); `card_answers` and `default_answer` give the values.

@dataclass(frozen=True, slots=True)
class BrandCrisisCard:
    """Moves the mover `move` spaces (always backward)."""

    kind: ClassVar[SpaceKind] = SpaceKind.BRAND_CRISIS
    action: ClassVar[CardAction] = CardAction.MOVE
    everyone_answers: ClassVar[bool] = False
    number: int
    move: int


@dataclass(frozen=True, slots=True)
class CareerPointCard:
    """The mover picks option A or option B; each option is a move."""

    kind: ClassVar[SpaceKind] = SpaceKind.CAREER_POINT
    action: ClassVar[CardAction] = CardAction.MOVE
    everyone_answers: ClassVar[bool] = False
    number: int
    option_a: int
    option_b: int


@dataclass(frozen=True, slots=True)
class YoureTheBossCard:
    """Every player picks one of `options` and gains a token of that field."""

    kind: ClassVar[SpaceKind] = SpaceKind.YOURE_THE_BOSS
    action: ClassVar[CardAction] = CardAction.TOKEN
    everyone_answers: ClassVar[bool] = True
    number: int
    options: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class DidYouKnowCard:
    """Every player may take one token of `field` (the pile's colour), or decline."""

    kind: ClassVar[SpaceKind] = SpaceKind.DID_YOU_KNOW
    action: ClassVar[CardAction] = CardAction.TOKEN
    everyone_answers: ClassVar[bool] = True
    number: int   # 1..39 across all piles, in field order
    field: Field


#: A card that waits for answers (a Finish card needs none: see `FinishCard`).
Card = BrandCrisisCard | CareerPointCard | YoureTheBossCard | DidYouKnowCard


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

#: Every deck whose cards wait for answers, by the kind of space that deals it; card
#: number n is entry n - 1 (CARD numbers Did You Know cards across all piles).
DECKS: Mapping[SpaceKind, tuple[Card, ...]] = MappingProxyType({
    SpaceKind.BRAND_CRISIS: BRAND_CRISIS_DECK,
    SpaceKind.CAREER_POINT: CAREER_POINT_DECK,
    SpaceKind.YOURE_THE_BOSS: YOURE_THE_BOSS_DECK,
    SpaceKind.DID_YOU_KNOW: DID_YOU_KNOW_DECK,
})
assert frozenset(DECKS) == CARD_SPACES
assert all(c.number == n and c.kind is kind
           for kind, deck in DECKS.items() for n, c in enumerate(deck, start=1))


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


#: Every row of the careers table, in its order (a career listed under two fields
#: appears twice, once per field).
ALL_CAREERS: tuple[Career, ...] = tuple(c for careers in CAREERS.values() for c in careers)

# A career listed under two fields pays the same in both, so a name alone (all FINL
# carries) names one salary.
_SALARY_BY_NAME: Mapping[str, int] = MappingProxyType({c.name.casefold(): c.salary for c in ALL_CAREERS})
assert len(_SALARY_BY_NAME) == len({(c.name.casefold(), c.salary) for c in ALL_CAREERS}), \
    "a career name with two salaries"

# Each field's best-paid career, the first listed on an equal salary (max keeps the first).
_DEFAULT_CAREERS: Mapping[Field, Career] = MappingProxyType({
    field: max(careers, key=lambda c: c.salary) for field, careers in CAREERS.items()
})


# --------------------------------------------------------------------------- look-ups

class UnknownCard(LookupError):
    """No card of that kind and number (Plain and Finish spaces deal no answerable card)."""


def find_card(kind: int, number: int) -> Card | None:
    """Card `number` (1-based, as CARD carries it) of the deck `kind` deals, or None."""
    deck = DECKS.get(kind)
    if deck is None or not isinstance(number, int) or not 1 <= number <= len(deck):
        return None
    return deck[number - 1]


def card(kind: int, number: int) -> Card:
    """Card `number` of the deck `kind` deals; `UnknownCard` if there is none."""
    found = find_card(kind, number)
    if found is None:
        raise UnknownCard(f"no card {number!r} in a deck of kind {kind!r}")
    return found


def card_answers(card: Card) -> tuple[int, ...]:
    """The values `card.action` may carry to answer `card`, in the card's own order:
    Brand Crisis its one move, Career Point (A, B), You're the Boss its fields,
    Did You Know (its field, 0 to decline)."""
    if isinstance(card, BrandCrisisCard):
        return (card.move,)
    if isinstance(card, CareerPointCard):
        return (card.option_a, card.option_b)
    if isinstance(card, YoureTheBossCard):
        return card.options
    return (card.field, 0)


def default_answer(card: Card) -> int:
    """The value the server answers `card` with for a player who lets the clock run out
    (or has left): the larger Career Point move (A on a tie), the first field of a
    You're the Boss card, and the Did You Know token taken."""
    if isinstance(card, BrandCrisisCard):
        return card.move
    if isinstance(card, CareerPointCard):
        return card.option_b if card.option_b > card.option_a else card.option_a
    if isinstance(card, YoureTheBossCard):
        return card.options[0]
    return card.field


def finish_card(place: int, players: int) -> FinishCard:
    """The Finish card for finishing in `place` (1-based) of `players`: first, last
    (with 2+ players; a lone player is first), or in between."""
    if place == 1:
        return FinishCard.FIRST
    if place == players:
        return FinishCard.LAST
    return FinishCard.OTHER


def draw_spin(rng: random.Random) -> int:
    """One spin: one of the 12 equal wedges (so not uniform over 1..6)."""
    return rng.choice(SPINNER_WEDGES)


def default_field(tokens: Mapping[int, int]) -> Field:
    """The field with the most tokens (`tokens` by field number, missing = 0), the
    lowest field number on a tie: the field the server picks a career in."""
    return max(Field, key=lambda f: (tokens.get(f, 0), -f))


def default_career(field: int) -> Career:
    """The career the server picks in `field`: the best paid, the first listed on a tie."""
    return _DEFAULT_CAREERS[Field(field)]


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


def career_salary(name: str, wire_thousands: int) -> int:
    """The dollars a FINL (or CRER) entry stands for: the catalogue's exact salary of the
    career called `name` (any letter case) when the wire's thousands agree with it, else
    the wire's thousands. The wire rounds down; a screen shows the catalogue's figure."""
    dollars = _SALARY_BY_NAME.get(name.casefold()) if isinstance(name, str) else None
    if dollars is not None and dollars // 1000 == wire_thousands:
        return dollars
    return wire_thousands * 1000


# --------------------------------------------------------------------------- words for people

def format_salary(dollars: int) -> str:
    """A salary as every screen shows it: "$90,700"."""
    return f"${dollars:,}"


def token_name(field: int) -> str:
    """One token of `field`, with its article: "a Marketing token", "an Advertising token"."""
    name = FIELD_NAMES[Field(field)]
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name} token"


def ordinal(place: int) -> str:
    """A finishing place as people say it: "1st", "2nd", "11th", "23rd"."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


def move_words(move: int) -> str:
    """A card's move: "move 2 spaces forward", "move 1 space back", "stay put"."""
    if move == 0:
        return "stay put"
    steps = abs(move)
    return f"move {steps} space{'s' if steps != 1 else ''} {'forward' if move > 0 else 'back'}"


#: What `card_text` says of a CARD that names no card (a capture or a peer may hold anything).
NO_SUCH_CARD = "no such card"


def card_title(kind: int, number: int) -> str:
    """A dealt card's name: "Brand Crisis #2", "Finish #1" (the deck is named even when
    the number is not one of its cards; a kind no space has is "kind 7 #3")."""
    deck = SPACE_NAMES.get(kind) if kind != SpaceKind.PLAIN else None
    return f"{deck or f'kind {kind}'} #{number}"


def card_text(kind: int, number: int) -> str:
    """What card `number` of deck `kind` (CARD's type and number) does, as a phrase
    every screen can put after its title: "move 3 spaces back", "A: stay put, or B:
    move 2 spaces forward", "every player takes a token of one of: Design, Marketing",
    "every player may take a Marketing token", "first to finish"; `NO_SUCH_CARD` for
    numbers that name no card."""
    if kind == SpaceKind.FINISH:
        return FINISH_CARD_NAMES.get(number, NO_SUCH_CARD)
    found = find_card(kind, number)
    if isinstance(found, BrandCrisisCard):
        return move_words(found.move)
    if isinstance(found, CareerPointCard):
        return f"A: {move_words(found.option_a)}, or B: {move_words(found.option_b)}"
    if isinstance(found, YoureTheBossCard):
        return "every player takes a token of one of: " + ", ".join(FIELD_NAMES[f] for f in found.options)
    if isinstance(found, DidYouKnowCard):
        return f"every player may take {token_name(found.field)}"
    return NO_SUCH_CARD
