"""The game engine: the rules of "Let's Go Marketing!" as a pure state machine.

Theory of operation
===================

A `Game` is one game from STRT to FINL. It knows nothing of sockets, clocks or the
global random module: the room layer feeds it actions, passes in the `random.Random`
it must use (for shuffles and for server-drawn spins) and the wall-clock times it
should record. Same seed and same actions therefore give the same game, byte for byte.

State
    Per seat: position (0..55), tokens per field, landings per space kind, finish
    place, chosen career. Shared: whose turn it is, the card waiting for answers (at
    most one), the decks (each a shuffled list drawn in order and reshuffled when
    empty; every Did You Know pile is its own deck), and how many have finished.

Actions
    `spin`, `answer_card` and `choose_career` are the only ways to change a game
    (`auto_play` picks one of them by a fixed rule). Each one first *validates*
    everything and raises a `RuleError` subclass naming the reason, and only then
    *applies* the action. Nothing is mutated before validation succeeds, so a refused
    action leaves the game exactly as it was (the room turns the error into "ignored,
    resync, strike"). Each successful action returns an `Outcome` listing what
    happened -- moves, cards dealt, tokens gained, finishes, whose turn it is now -- so
    the room can send GAME/CARD packets without diffing state. The room's hot path
    uses the ``act_*`` twins instead, which return the same facts in the game's one
    reused ``Changes`` record: no objects are built per action but the tuples in it.

The board phase, one turn
    The seat whose turn it is spins. The spin move is clamped to 0..55 and the kind of
    the space it ends on decides what happens (RULES.md "Board"):
      * plain: nothing; the turn passes at once.
      * Brand Crisis / Career Point: a card goes to the mover, who alone must answer;
        the answer applies the card's move.
      * You're the Boss / Did You Know: a card goes to every seat and every seat,
        finished ones included, must answer (pick a field / take or decline a token).
      * Finish (55): the player finishes (see below); the turn passes.
    While a card waits, no one may spin; the turn passes when the last awaited answer
    is in. A move caused by a card never fires the space it ends on, but a card move
    that reaches 55 still finishes the player.

Finishing and the end
    Reaching 55 gives the next place (1, 2, ...) and a Finish card: 1 to the first,
    3 to the last (with 2+ players; a lone player gets 1), 2 to everyone else. Finish
    cards need no answer. Finished players are skipped in turn order; once all have
    finished, `turn` is 0 and the board phase is over. Any finished player may choose
    a career (even while others still play); when every player has one, the game is
    over and `results()` ranks them by finish order.

Who owes what
    `owes(seat)` answers "what is this seat expected to do now": ANSWER if a pending
    card awaits it, else SPIN if it is its turn and no card waits, else CAREER if it
    has finished without a career, else None. The room uses it for idle timers and
    absent players; `auto_play(seat)` performs exactly that duty.

Every rule question -- which answers a card allows, what auto_play answers, which
career it picks, which Finish card a place gets -- is asked of ``lgmp.game.rules``;
this module keeps the state and the order of play.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field as dc_field
from enum import IntEnum
from types import MappingProxyType
from typing import Mapping

from ..wire.errors import RuleError
from ..wire.packets import CardAction
from .rules import (
    BOARD,
    BOARD_SIZE,
    BRAND_CRISIS_DECK,
    CARD_SPACES,
    CAREER_POINT_DECK,
    CAREERS,
    DID_YOU_KNOW_FIELD,
    DID_YOU_KNOW_PILES,
    FINISH_SPACE,
    SEATS,
    SPIN_NUMBERS,
    YOURE_THE_BOSS_DECK,
    Avatar,
    Card,
    Career,
    Field,
    SpaceKind,
    card_answers,
    default_answer,
    default_career,
    default_field,
    draw_spin,
    find_career,
    finish_card,
    wire_salary,
)

__all__ = [
    "Duty", "Move", "CardDeal", "PendingCard", "Outcome", "Changes",
    "PlayerResult", "PlayerRecord", "GameRecord", "Game",
    "EngineRuleError", "UnknownSeat", "AlreadyFinished", "CardPending", "NotYourTurn",
    "BadSpinNumber", "NoCardPending", "NotAwaited", "WrongAction", "WrongAnswer",
    "NotFinished", "CareerAlreadyChosen", "UnknownField", "UnknownCareer", "WrongSalary",
    "NothingOwed", "GameNotOver",
]


# --------------------------------------------------------------------------- errors

class EngineRuleError(RuleError):
    """Base of the engine's refusals; `reason` is a sentence a person can read."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class UnknownSeat(EngineRuleError):
    """The seat holds no player in this game."""


class AlreadyFinished(EngineRuleError):
    """A finished player tried to spin."""


class CardPending(EngineRuleError):
    """A spin while a card still waits for answers."""


class NotYourTurn(EngineRuleError):
    """A spin from a seat whose turn it is not."""


class BadSpinNumber(EngineRuleError):
    """A spin number outside 1..6."""


class NoCardPending(EngineRuleError):
    """A card answer when no card waits for one."""


class NotAwaited(EngineRuleError):
    """A card answer from a seat the card does not ask, or that already answered."""


class WrongAction(EngineRuleError):
    """A card answer with the other action number (1 for BC/CP, 2 for YTB/DYK)."""


class WrongAnswer(EngineRuleError):
    """A card answer whose value the card does not offer."""


class NotFinished(EngineRuleError):
    """A career choice before the player reached 55."""


class CareerAlreadyChosen(EngineRuleError):
    """A second career choice."""


class UnknownField(EngineRuleError):
    """A career field outside 1..6."""


class UnknownCareer(EngineRuleError):
    """A career name that is not one of the field's careers."""


class WrongSalary(EngineRuleError):
    """A career salary other than the catalogue's salary // 1000."""


class NothingOwed(EngineRuleError):
    """auto_play for a seat that owes nothing now."""


class GameNotOver(EngineRuleError):
    """results() before every player finished and chose a career."""


# --------------------------------------------------------------------------- values

class Duty(IntEnum):
    SPIN = 1
    ANSWER = 2
    CAREER = 3


# Members the per-action code compares with, looked up once: reading one off its
# enum class goes through the enum machinery (~90 ns), a module global does not.
_SPIN, _ANSWER, _CAREER = Duty.SPIN, Duty.ANSWER, Duty.CAREER


@dataclass(frozen=True, slots=True)
class Move:
    seat: int
    start: int
    end: int
    by_card: bool


@dataclass(frozen=True, slots=True)
class CardDeal:
    kind: SpaceKind
    number: int
    recipients: tuple[int, ...]   # seats; the room adds the host


@dataclass(frozen=True, slots=True)
class PendingCard:
    kind: SpaceKind
    number: int
    mover: int
    awaiting: frozenset[int]      # seats whose answer is still missing


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one successful action did. Only position changes appear in `moves`."""

    moves: tuple[Move, ...] = ()
    landed: SpaceKind | None = None            # set only by a spin
    cards: tuple[CardDeal, ...] = ()
    tokens: tuple[tuple[int, Field], ...] = ()
    finished: tuple[tuple[int, int], ...] = ()  # (seat, place)
    card_resolved: bool = False
    turn: int = 0
    board_over: bool = False
    game_over: bool = False


@dataclass(frozen=True, slots=True)
class PlayerResult:
    seat: int
    place: int
    career_name: str
    wire_salary: int


@dataclass(frozen=True, slots=True)
class PlayerRecord:
    seat: int
    name: str
    avatar: Avatar
    place: int | None          # None only in a record of an unfinished game
    field: Field | None
    career: str | None
    salary: int | None         # dollars
    tokens: tuple[int, ...]    # per Field, 1..6 order
    landings: tuple[int, ...]  # spin landings per SpaceKind, 0..5 order
    auto_career: bool          # the server chose the career (auto_play)


@dataclass(frozen=True, slots=True)
class GameRecord:
    started_at: float
    ended_at: float
    duration: float
    players: tuple[PlayerRecord, ...]   # in seat order


# --------------------------------------------------------------------------- internals


@dataclass(slots=True)
class _Deck:
    """A deck drawn in shuffled order, reshuffled in full when it runs out."""

    cards: tuple[Card, ...]
    order: list[Card] = dc_field(default_factory=list)
    drawn: int = 0

    def shuffle(self, rng: random.Random) -> None:
        self.order = list(self.cards)
        rng.shuffle(self.order)
        self.drawn = 0

    def draw(self, rng: random.Random) -> Card:
        if self.drawn == len(self.order):
            self.shuffle(rng)
        card = self.order[self.drawn]
        self.drawn += 1
        return card


@dataclass(slots=True)
class _Player:
    seat: int
    name: str
    avatar: Avatar
    position: int = 0
    place: int | None = None
    career: Career | None = None
    auto_career: bool = False
    tokens: list[int] = dc_field(default_factory=lambda: [0] * len(Field))
    landings: list[int] = dc_field(default_factory=lambda: [0] * len(SpaceKind))


@dataclass(slots=True)
class _Pending:
    card: Card
    mover: int
    awaiting: set[int]


class Changes:
    """What the game's latest action did: the same facts as its ``Outcome``, as plain
    tuples in one record that every action of the game empties and refills.

    It is the room's view of an action on the hot path, where building an Outcome,
    its Moves and CardDeals for every packet costs more than the rules do. Read it
    before the next action: after that it describes the next one.
    """

    __slots__ = ("moves", "cards", "tokens", "finished", "landed", "card_resolved")

    def __init__(self) -> None:
        self.moves: list[tuple[int, int, int, bool]] = []  # (seat, start, end, by_card)
        #: (kind, number, recipients, awaiting): awaiting is who must answer it (() for a Finish card)
        self.cards: list[tuple[SpaceKind, int, tuple[int, ...], tuple[int, ...]]] = []
        self.tokens: list[tuple[int, Field]] = []
        self.finished: list[tuple[int, int]] = []  # (seat, place)
        self.landed: SpaceKind | None = None  # set only by a spin
        self.card_resolved = False

    def _clear(self) -> Changes:
        if self.moves:
            self.moves.clear()
        if self.cards:
            self.cards.clear()
        if self.tokens:
            self.tokens.clear()
        if self.finished:
            self.finished.clear()
        self.landed = None
        self.card_resolved = False
        return self


# Looked up per action: an IntEnum's hash and its constructor are Python code, a
# tuple index is not.
_DEALS_A_CARD = tuple(kind in CARD_SPACES for kind in BOARD)  # per space: landing there deals a card
_FIELD_OF = {int(f): f for f in Field}
_MOVE = CardAction.MOVE


def _is_int(value: object) -> bool:
    # bool is an int subclass and 3.0 == 3; neither is a wire number.
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the game

class Game:
    def __init__(self, players: Mapping[int, tuple[str, int]], rng: random.Random, *,
                 started_at: float):
        # Bad players are a bug in the caller, not a rule refusal: ValueError.
        if not 1 <= len(players) <= len(SEATS):
            raise ValueError(f"a game needs 1-6 players, got {len(players)}")
        if any(seat not in SEATS for seat in players):
            raise ValueError(f"seats must be 1-6, got {sorted(players)}")
        avatars = [avatar for _, avatar in players.values()]
        if len(set(avatars)) != len(avatars) or any(a not in Avatar._value2member_map_
                                                    for a in avatars):
            raise ValueError(f"avatars must be distinct and 1-6, got {avatars}")

        self._rng = rng
        self._started_at = started_at
        self._seats: tuple[int, ...] = tuple(sorted(players))
        self._players: dict[int, _Player] = {
            seat: _Player(seat, players[seat][0], Avatar(players[seat][1]))
            for seat in self._seats
        }
        # Shuffle order is fixed (BC, CP, YTB, then DYK piles in field order) so a
        # seed always gives the same decks.
        self._brand_crisis = _Deck(BRAND_CRISIS_DECK)
        self._career_point = _Deck(CAREER_POINT_DECK)
        self._youre_the_boss = _Deck(YOURE_THE_BOSS_DECK)
        self._did_you_know = {f: _Deck(DID_YOU_KNOW_PILES[f]) for f in Field}
        for deck in self._decks():
            deck.shuffle(rng)
        self._turn = self._seats[0]
        self._pending: _Pending | None = None
        self._finished = 0
        self._careers = 0  # players who chose a career: the game is over at len(seats)
        # Who gets the turn after each seat, in order: the ring _pass_turn walks.
        self._ring_after: dict[int, tuple[int, ...]] = {
            seat: self._seats[i + 1:] + self._seats[:i + 1] for i, seat in enumerate(self._seats)
        }
        # Pieces per space, kept as they move (every GAME carries it).
        self._occupancy = [0] * BOARD_SIZE
        self._occupancy[0] = len(self._seats)
        self._changes = Changes()

    # ----------------------------------------------------------------- read access

    @property
    def seats(self) -> tuple[int, ...]:
        """The occupied seats, ascending."""
        return self._seats

    @property
    def turn(self) -> int:
        return self._turn

    @property
    def pending(self) -> PendingCard | None:
        p = self._pending
        if p is None:
            return None
        return PendingCard(p.card.kind, p.card.number, p.mover, frozenset(p.awaiting))

    @property
    def positions(self) -> Mapping[int, int]:
        return MappingProxyType({s: p.position for s, p in self._players.items()})

    def occupancy(self) -> tuple[int, ...]:
        return tuple(self._occupancy)

    def tokens_of(self, seat: int) -> tuple[int, ...]:
        """Token counts of `seat`, per Field in 1..6 order."""
        return tuple(self._player(seat).tokens)

    def place_of(self, seat: int) -> int | None:
        """Finish place of `seat`, None while it is still on the board."""
        return self._player(seat).place

    def career_of(self, seat: int) -> Career | None:
        return self._player(seat).career

    @property
    def board_over(self) -> bool:
        return self._finished == len(self._seats)

    @property
    def is_over(self) -> bool:
        # Only a finished player may choose a career, so all chose means all finished too.
        return self._careers == len(self._seats)

    def owes(self, seat: int) -> Duty | None:
        player = self._players.get(seat)
        if player is None:
            return None
        if self._pending is not None:
            if seat in self._pending.awaiting:
                return _ANSWER
        elif seat == self._turn:
            return _SPIN
        if player.place is not None and player.career is None:
            return _CAREER
        return None

    def snapshot(self) -> tuple:
        """A comparable value holding the whole state (rng included): two games with
        equal snapshots behave identically. For tests and debugging."""
        return (
            tuple((p.seat, p.name, p.avatar, p.position, p.place, p.career, p.auto_career,
                   tuple(p.tokens), tuple(p.landings)) for p in self._players.values()),
            self._turn,
            None if self._pending is None else (
                self._pending.card, self._pending.mover,
                frozenset(self._pending.awaiting)),
            self._finished,
            tuple((tuple(d.order), d.drawn) for d in self._decks()),
            self._rng.getstate(),
        )

    # ----------------------------------------------------------------- actions

    def draw_spin(self) -> int:
        """One spinner result, from the 12 wedges (not uniform over 1..6)."""
        return draw_spin(self._rng)

    def spin(self, seat: int, number: int) -> Outcome:
        return self._outcome(self.act_spin(seat, number))

    def act_spin(self, seat: int, number: int) -> Changes:
        """``spin``, telling what it did in the game's reused ``Changes``."""
        player = self._player(seat)
        if player.place is not None:
            raise AlreadyFinished(f"seat {seat} has finished and no longer spins")
        if self._pending is not None:
            raise CardPending(f"a {self._pending.card.kind.name} card still waits for answers "
                              f"from seats {sorted(self._pending.awaiting)}")
        if seat != self._turn:
            raise NotYourTurn(f"it is seat {self._turn}'s turn, not seat {seat}'s")
        if not _is_int(number) or number not in SPIN_NUMBERS:
            raise BadSpinNumber(f"a spin must be 1-6, got {number!r}")

        events = self._changes._clear()
        end = self._move(player, number, by_card=False, events=events)
        kind = events.landed = BOARD[end]
        player.landings[kind] += 1
        if _DEALS_A_CARD[end]:
            self._deal(kind, end, seat, events)
        else:
            # Plain and Finish need no answers (the Finish card was dealt by _move).
            self._pass_turn()
        return events

    def answer_card(self, seat: int, action: int, value: int) -> Outcome:
        return self._outcome(self.act_answer(seat, action, value))

    def act_answer(self, seat: int, action: int, value: int) -> Changes:
        """``answer_card``, telling what it did in the game's reused ``Changes``."""
        self._player(seat)
        pending = self._pending
        if pending is None:
            raise NoCardPending(f"seat {seat} answered a card but none is waiting")
        card = pending.card
        if seat not in pending.awaiting:
            if not card.everyone_answers and seat != pending.mover:
                raise NotAwaited(f"the {card.kind.name} card asks only seat "
                                 f"{pending.mover}, not seat {seat}")
            raise NotAwaited(f"seat {seat} already answered the {card.kind.name} card")
        if action != card.action or not _is_int(action):
            raise WrongAction(f"a {card.kind.name} card is answered with action "
                              f"{int(card.action)}, got {action!r}")
        allowed = card_answers(card)
        if not _is_int(value) or value not in allowed:
            raise WrongAnswer(f"{card.kind.name} card {card.number} accepts "
                              f"{sorted({int(v) for v in allowed})}, got {value!r}")

        events = self._changes._clear()
        mover = self._players[pending.mover]
        if card.action is _MOVE:
            # Brand Crisis and Career Point: the validated value *is* the move.
            self._move(mover, value, by_card=True, events=events)
        elif value:  # YTB always names a field; DYK names one or 0 (declined)
            self._players[seat].tokens[value - 1] += 1
            events.tokens.append((seat, _FIELD_OF[value]))
        pending.awaiting.discard(seat)
        if not pending.awaiting:
            events.card_resolved = True
            self._pending = None
            self._pass_turn()
        return events

    def choose_career(self, seat: int, field: int, name: str, salary: int) -> Outcome:
        return self._outcome(self.act_career(seat, field, name, salary))

    def act_career(self, seat: int, field: int, name: str, salary: int) -> Changes:
        """``choose_career``, telling what it did in the game's reused ``Changes``."""
        player = self._player(seat)
        if player.place is None:
            raise NotFinished(f"seat {seat} must reach space {FINISH_SPACE} "
                              "before choosing a career")
        if player.career is not None:
            raise CareerAlreadyChosen(f"seat {seat} already chose {player.career.name}")
        if not _is_int(field) or field not in Field._value2member_map_:
            raise UnknownField(f"a career field must be 1-6, got {field!r}")
        career = find_career(field, name)
        if career is None:
            raise UnknownCareer(f"{name!r} is not a {Field(field).name} career; choose "
                                f"from {[c.name for c in CAREERS[Field(field)]]}")
        if not _is_int(salary) or salary != wire_salary(career):
            raise WrongSalary(f"{career.name} pays {wire_salary(career)} (thousands), "
                              f"got {salary!r}")

        player.career = career
        self._careers += 1
        return self._changes._clear()

    def auto_play(self, seat: int) -> Outcome:
        """Do what `seat` owes now, by the fixed rule an idle or absent player gets."""
        return self._outcome(self.act_auto(seat))

    def act_auto(self, seat: int) -> Changes:
        """``auto_play``, telling what it did in the game's reused ``Changes``."""
        self._player(seat)
        duty = self.owes(seat)
        if duty is Duty.SPIN:
            return self.act_spin(seat, self.draw_spin())
        if duty is Duty.ANSWER:
            return self.act_answer(seat, *self.auto_answer(seat))
        if duty is Duty.CAREER:
            player = self._players[seat]
            career = default_career(default_field(dict(zip(Field, player.tokens))))
            changes = self.act_career(seat, career.field, career.name, wire_salary(career))
            player.auto_career = True
            return changes
        raise NothingOwed(f"seat {seat} owes nothing now")

    def auto_answer(self, seat: int) -> tuple[int, int]:
        """The (action, value) that ``auto_play`` would answer ``seat``'s card with."""
        if self.owes(seat) is not Duty.ANSWER:
            raise NothingOwed(f"seat {seat} owes no card answer now")
        card = self._pending.card
        return int(card.action), default_answer(card)

    # ----------------------------------------------------------------- results

    def results(self) -> tuple[PlayerResult, ...]:
        if not self.is_over:
            raise GameNotOver("results exist only once every player finished and chose")
        ranked = sorted(self._players.values(), key=lambda p: p.place)
        return tuple(PlayerResult(p.seat, p.place, p.career.name, wire_salary(p.career))
                     for p in ranked)

    def record(self, *, ended_at: float) -> GameRecord:
        """The per-player record RULES.md asks for. Meant for a finished game; for an
        unfinished one, place/field/career/salary are None where not known yet."""
        return GameRecord(
            started_at=self._started_at,
            ended_at=ended_at,
            duration=ended_at - self._started_at,
            players=tuple(
                PlayerRecord(
                    seat=p.seat, name=p.name, avatar=p.avatar, place=p.place,
                    field=p.career.field if p.career else None,
                    career=p.career.name if p.career else None,
                    salary=p.career.salary if p.career else None,
                    tokens=tuple(p.tokens), landings=tuple(p.landings),
                    auto_career=p.auto_career,
                )
                for p in self._players.values()
            ),
        )

    # ----------------------------------------------------------------- internals

    def _decks(self) -> list[_Deck]:
        return [self._brand_crisis, self._career_point, self._youre_the_boss,
                *self._did_you_know.values()]

    def _player(self, seat: int) -> _Player:
        player = self._players.get(seat) if _is_int(seat) else None
        if player is None:
            raise UnknownSeat(f"seat {seat!r} holds no player in this game")
        return player

    def _move(self, player: _Player, delta: int, *, by_card: bool, events: Changes) -> int:
        start = player.position
        end = min(FINISH_SPACE, max(0, start + delta))
        if end != start:
            player.position = end
            occupancy = self._occupancy
            occupancy[start] -= 1
            occupancy[end] += 1
            events.moves.append((player.seat, start, end, by_card))
            if end == FINISH_SPACE:
                self._finish(player, events)
        return end

    def _finish(self, player: _Player, events: Changes) -> None:
        self._finished += 1
        place = player.place = self._finished
        events.finished.append((player.seat, place))
        # A Finish card needs no answer: it awaits no one.
        events.cards.append((SpaceKind.FINISH, finish_card(place, len(self._seats)),
                             (player.seat,), ()))

    def _deal(self, kind: SpaceKind, space: int, mover: int, events: Changes) -> None:
        if kind is SpaceKind.BRAND_CRISIS:
            deck = self._brand_crisis
        elif kind is SpaceKind.CAREER_POINT:
            deck = self._career_point
        elif kind is SpaceKind.YOURE_THE_BOSS:
            deck = self._youre_the_boss
        else:
            deck = self._did_you_know[DID_YOU_KNOW_FIELD[space]]
        card = deck.draw(self._rng)
        awaiting = self._seats if card.everyone_answers else (mover,)
        self._pending = _Pending(card, mover, set(awaiting))
        events.cards.append((kind, card.number, awaiting, awaiting))

    def _pass_turn(self) -> None:
        """Give the turn to the next unfinished seat after the current one (0 if none)."""
        players = self._players
        for seat in self._ring_after[self._turn]:
            if players[seat].place is None:
                self._turn = seat
                return
        self._turn = 0

    def _outcome(self, changes: Changes) -> Outcome:
        return Outcome(
            moves=tuple(Move(*move) for move in changes.moves), landed=changes.landed,
            cards=tuple(CardDeal(kind, number, recipients) for kind, number, recipients, _ in changes.cards),
            tokens=tuple(changes.tokens), finished=tuple(changes.finished),
            card_resolved=changes.card_resolved, turn=self._turn,
            board_over=self.board_over, game_over=self.is_over,
        )
