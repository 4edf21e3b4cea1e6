"""What ``lgmp play`` asks a person, and how a typed line becomes a packet. Pure.

The messages for JOIN and REDY answers, and one ``Question`` per thing a person
is asked -- username, avatar, spin, each card kind, field, career. A question has
the lines to show, the prompt, and ``parse(text)``, which turns a typed line into
what to send (a packet, or a choice) or raises ``BadAnswer`` with what to type
instead. A blank line picks the default the prompt shows, which is always what
the server would pick if the player let the clock run out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..rooms.names import NAME_MAX, check_name_shape
from ..wire.packets import (
    CardAction,
    CardAnswer,
    CareerChoice,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
)
from ..game.rules import (
    AVATAR_NAMES,
    CAREERS,
    FIELD_LETTERS,
    FIELD_NAMES,
    SEATS,
    Avatar,
    BrandCrisisCard,
    Card,
    CareerPointCard,
    DidYouKnowCard,
    Field,
    YoureTheBossCard,
    card_answers,
    card_text,
    card_title,
    career_salary,
    default_answer,
    default_career,
    default_field,
    find_card,
    find_career,
    format_salary,
    move_words,
    ordinal,
    token_name,
    wire_salary,
)

Out = Callable[..., None]  # print-like: out(text), out(text, end="")


# =============================================================================== pure parts


class BadAnswer(ValueError):
    """A typed line that does not answer the question; the message says what would."""


JOIN_MESSAGES = {
    JoinAnswer.LOBBY_FULL: "Room {code} is full: it already has six players.",
    JoinAnswer.ROOM_NOT_FOUND: "There is no room {code}. Check the four-letter code on the host's screen.",
    JoinAnswer.GAME_STARTED: "The game in room {code} has already started. Wait for it to end, then join again.",
}

NAME_RULES = f"1-{NAME_MAX} characters, each a letter A-Z or a-z, a digit 0-9, [ or ] (no spaces)"

READY_MESSAGES = {
    ReadyAnswer.EMPTY_NAME: "You need a username.",
    ReadyAnswer.NAME_TOO_LONG: f"That username is too long: at most {NAME_MAX} characters.",
    ReadyAnswer.INVALID_CHARACTERS: f"That username has a character that is not allowed: use {NAME_RULES}.",
    ReadyAnswer.ALREADY_TAKEN: "Someone in the room already has that username or that avatar. Pick again. "
                               "(Rejoining a game you left? Use the same name and colour as before.)",
    ReadyAnswer.PROFANE: "That username is not allowed. Pick another.",
}


def join_message(answer: int, code: str) -> str:
    """What to tell a person whose JOIN was refused (answers 3, 4, 5)."""
    template = JOIN_MESSAGES.get(answer, "The server refused to seat you (JOIN answer {answer}).")
    return template.format(code=code.upper(), answer=answer)


def is_code_shaped(code: str) -> bool:
    """Four ASCII letters: anything else names no room (and could not even be sent)."""
    return len(code) == 4 and code.isascii() and code.isalpha()


def ready_message(answer: int) -> str:
    """Why a REDY was refused (answers 2-6)."""
    return READY_MESSAGES.get(answer, f"The server refused that (REDY answer {answer}). Pick again.")


@dataclass(frozen=True)
class Question:
    """One thing a person is asked: ``lines`` shown once, then ``ask`` before the cursor.

    ``parse(text)`` returns the answer (a packet to send, or a choice) or raises
    ``BadAnswer``. ``default`` is what a blank line picks (None: no default).
    """

    key: str
    lines: tuple[str, ...]
    ask: str
    parse: Callable[[str], object] = field(compare=False)
    default: object = None
    confirm_only: bool = False  # nothing to choose (spin, Brand Crisis): any line, even a quick one, confirms


def _pick(text: str, choices: dict[str, object], what: str) -> object:
    """``text`` as one of ``choices`` by exact key (any case), else by a unique prefix of a key."""
    wanted = text.strip().casefold()
    keys = {key.casefold(): value for key, value in choices.items()}
    if wanted in keys:
        return keys[wanted]
    matches = {id(v): v for key, v in keys.items() if len(wanted) >= 2 and key.startswith(wanted)}
    if len(matches) == 1:
        return next(iter(matches.values()))
    raise BadAnswer(f"Please type {what}.")


# --- the lobby ------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why ``name`` would be refused for its shape (REDY 2-4), or None. The server also checks profanity and uniqueness."""
    verdict = check_name_shape(name)
    return None if verdict is ReadyAnswer.ACCEPTED else READY_MESSAGES[verdict]


def parse_name(text: str) -> str:
    name = text.strip()
    problem = name_problem(name)
    if problem:
        raise BadAnswer(problem)
    return name


def name_question() -> Question:
    return Question("name", (f"Choose a username: {NAME_RULES}.",), "Username: ", parse_name)


def free_avatars(avatars: Iterable[int]) -> list[int]:
    taken = set(avatars)
    return [a for a in Avatar if a not in taken]


def avatar_menu(avatars: Iterable[int]) -> str:
    return "  ".join(f"{a} {AVATAR_NAMES[Avatar(a)]}" for a in free_avatars(avatars))


_AVATAR_CHOICES: dict[str, object] = {str(int(a)): int(a) for a in Avatar} | {AVATAR_NAMES[a]: int(a) for a in Avatar}


def parse_avatar(text: str, avatars: Iterable[int], insisted: int | None = None) -> int:
    """An avatar number (or colour name) that is free in ``avatars`` (the room's REDY array); blank = the first free one.

    A taken one is refused, unless it is ``insisted`` (asked for twice in a row): a player
    rejoining a game it left takes back its seat with its old name *and* colour.
    """
    free = free_avatars(avatars)
    if not text.strip() and free:
        return free[0]
    options = ", ".join(str(a) for a in free)
    avatar = _pick(text, _AVATAR_CHOICES, f"the number of a free avatar ({options})")
    if avatar not in free and avatar != insisted:
        raise BadAnswer(f"{AVATAR_NAMES[Avatar(avatar)]} is taken. Free: {avatar_menu(avatars)}. "
                        f"(Rejoining a game you left? Type {avatar} again to use your old colour.)")
    return avatar


def avatar_question(avatars: tuple[int, ...], live: Callable[[], tuple[int, ...]] | None = None) -> Question:
    """Pick a bulldog from the free ones; ``live`` gives the room's avatars at the moment the answer is typed."""
    free = free_avatars(avatars)
    first = free[0] if free else None
    default = f" [Enter = {first} {AVATAR_NAMES[Avatar(first)]}]" if first else ""
    tried: list[int | None] = [None]

    def parse(text: str) -> int:
        insisted, tried[0] = tried[0], None
        try:
            return parse_avatar(text, live() if live else avatars, insisted)
        except BadAnswer:
            try:
                tried[0] = _pick(text, _AVATAR_CHOICES, "")  # remembered: typing it again insists
            except BadAnswer:
                pass
            raise

    return Question("avatar", ("Pick your bulldog. Free colours:  " + avatar_menu(avatars),),
                    f"Avatar number{default}: ", parse, first)


# --- the game --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpinRequest:
    """The answer to the spin question: the session draws the number and sends SPIN."""


def spin_question(game: GameUpdate) -> Question:
    return Question(f"spin {id(game)}", (), "Your turn! Press Enter to spin: ", lambda text: SpinRequest(), SpinRequest(),
                    confirm_only=True)


def _dealt_card(kind: int, number: int) -> Card:
    """The card CARD dealt, or ValueError: Finish cards and unknown cards take no answer."""
    card = find_card(kind, number)
    if card is None:
        raise ValueError(f"card kind {kind} #{number} takes no answer")
    return card


def default_card_answer(kind: int, number: int) -> CardAnswer:
    """What the server answers for a player who lets the clock run out (PROTOCOL.md 10.4)."""
    card = _dealt_card(kind, number)
    return CardAnswer(card.action, default_answer(card))


def parse_card_answer(kind: int, number: int, text: str) -> CardAnswer:
    """A typed answer to card ``kind`` #``number`` as the CARD packet to send; blank = the default."""
    if not text.strip():
        return default_card_answer(kind, number)
    try:
        card = _dealt_card(kind, number)
    except ValueError:
        raise BadAnswer(f"Card kind {kind} takes no answer.") from None
    word = text.strip().casefold()
    if isinstance(card, BrandCrisisCard):
        return CardAnswer(card.action, card.move)  # nothing to choose: any line confirms
    if isinstance(card, CareerPointCard):
        if word in ("a", "option a"):
            return CardAnswer(card.action, card.option_a)
        if word in ("b", "option b"):
            return CardAnswer(card.action, card.option_b)
        raise BadAnswer("Please type A or B.")
    if isinstance(card, YoureTheBossCard):
        choices: dict[str, object] = {}
        for f in Field:
            choices[str(int(f))] = f
            choices[FIELD_LETTERS[f]] = f
            choices[FIELD_NAMES[f]] = f
        listed = ", ".join(str(int(f)) for f in sorted(card.options))
        chosen = _pick(text, choices, f"the number of one of the card's fields ({listed})")
        if chosen not in card_answers(card):
            raise BadAnswer(f"This card does not offer {FIELD_NAMES[chosen]}. Choose one of {listed}.")
        return CardAnswer(card.action, int(chosen))
    take, leave = card_answers(card)
    if word in ("y", "yes"):
        return CardAnswer(card.action, take)
    if word in ("n", "no"):
        return CardAnswer(card.action, leave)
    raise BadAnswer("Please type y (take the token) or n (leave it).")


def card_question(kind: int, number: int) -> Question:
    """The question a dealt card asks its player (Brand Crisis, Career Point, You're the Boss, Did You Know)."""
    card = _dealt_card(kind, number)
    default = CardAnswer(card.action, default_answer(card))
    parse = lambda text: parse_card_answer(kind, number, text)  # noqa: E731
    key = f"card {kind} {number}"
    title = card_title(kind, number)
    if isinstance(card, BrandCrisisCard):
        return Question(key, (f"{title}! Your brand takes a hit: {card_text(kind, number)}.",),
                        "Press Enter to accept: ", parse, default, confirm_only=True)
    if isinstance(card, CareerPointCard):
        letter = "A" if default.value == card.option_a else "B"
        return Question(key, (f"{title}! Choose your move:",
                              f"  A: {move_words(card.option_a)}",
                              f"  B: {move_words(card.option_b)}"),
                        f"A or B [Enter = {letter}]: ", parse, default)
    if isinstance(card, YoureTheBossCard):
        first = Field(default.value)
        lines = [f"{title}! Everyone picks a token from one of these fields:"]
        lines += [f"  {int(f)} {FIELD_NAMES[f]}" for f in sorted(card.options)]
        return Question(key, tuple(lines), f"Field number [Enter = {int(first)} {FIELD_NAMES[first]}]: ",
                        parse, default)
    assert isinstance(card, DidYouKnowCard)
    pile = FIELD_NAMES[card.field]
    return Question(key, (f"{title} from the {pile} pile: {card_text(kind, number)}.",),
                    f"Take the {pile} token? [Y/n]: ", parse, default)


def describe_card_answer(answer: CardAnswer) -> str:
    """What an answer does, for the player: 'You take a Marketing token.' and the like."""
    if answer.action == CardAction.TOKEN:
        return f"You take {token_name(answer.value)}." if answer.value else "You leave the token."
    return f"You {move_words(answer.value)}."


# --- careers -------------------------------------------------------------------------

_FIELD_RANGE = f"{min(Field):d}-{max(Field):d}"  # "1-6"


def parse_field(text: str, default: Field | None = None) -> Field:
    if not text.strip():
        if default is None:
            raise BadAnswer(f"Please type a field number {_FIELD_RANGE}.")
        return default
    choices: dict[str, object] = {}
    for f in Field:
        choices[str(int(f))] = f
        choices[FIELD_NAMES[f]] = f
    return _pick(text, choices, f"a field number {_FIELD_RANGE}")


def field_question(tokens: Counter | dict[int, int]) -> Question:
    default = default_field(tokens)
    lines = ["Choose your career. First pick a field:"]
    for f in Field:
        count = tokens.get(f, 0)
        top = default_career(f)
        lines.append(f"  {int(f)} {FIELD_NAMES[f]:<26}" + f"tokens: {count}   up to {format_salary(top.salary)}")
    return Question("field", tuple(lines), f"Field {_FIELD_RANGE} [Enter = {int(default)} {FIELD_NAMES[default]}]: ",
                    lambda text: parse_field(text, default), default)


BACK = "back"


def parse_career(field_: int, text: str) -> CareerChoice | str:
    """A typed career of ``field_`` (number in the list, or name) as the CRER to send; 0 = ``BACK``; blank = best paid."""
    careers = CAREERS[Field(field_)]
    if not text.strip():
        chosen = default_career(field_)
    else:
        choices: dict[str, object] = {"0": BACK, "back": BACK}
        for i, career in enumerate(careers, start=1):
            choices[str(i)] = career
            choices[career.name] = career
        chosen = _pick(text, choices, f"a career number 1-{len(careers)}, or 0 to go back")
        if chosen == BACK:
            return BACK
    return CareerChoice(int(field_), chosen.name, wire_salary(chosen))


def validate_career(choice: CareerChoice) -> bool:
    """Would the server accept this CRER (PROTOCOL.md 8.5)?"""
    career = find_career(choice.field, choice.career)
    return career is not None and choice.salary == wire_salary(career)


def career_question(field_: int) -> Question:
    careers = CAREERS[Field(field_)]
    top = default_career(field_)
    lines = [f"{FIELD_NAMES[Field(field_)]} careers:"]
    lines += [f"  {i} {c.name:<46}{format_salary(c.salary):>9}" for i, c in enumerate(careers, start=1)]
    lines.append("  0 back to the fields")
    return Question(f"career {int(field_)}", tuple(lines),
                    f"Career 1-{len(careers)} [Enter = {careers.index(top) + 1} {top.name}]: ",
                    lambda text: parse_career(field_, text), top)


# --- results ---------------------------------------------------------------------------


def standings_lines(results: FinalResults, seat: int | None, who: Callable[[int], str]) -> list[str]:
    """FINL as a table, then the player's own result."""
    lines = ["Final standings:"]
    order = sorted((place, s) for s, place in enumerate(results.places, start=1) if place)
    for place, s in order:
        career = results.careers[s - 1]
        dollars = career_salary(career, results.salaries[s - 1])
        lines.append(f"  {place}. {who(s):<14} {career:<46}{format_salary(dollars):>9}")
    if seat in SEATS and results.places[seat - 1]:
        place = results.places[seat - 1]
        career = results.careers[seat - 1]
        dollars = career_salary(career, results.salaries[seat - 1])
        lines.append(f"You finished {ordinal(place)} of {len(order)}, as {career} earning {format_salary(dollars)} a year.")
    return lines
