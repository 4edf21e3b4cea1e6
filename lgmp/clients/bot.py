"""Bots: players the computer plays, over a real connection like any client.

``BotBrain`` is pure: it sees each packet the server sends a player and says
what to send back. ``play_bot`` connects one to a room and runs it until the
game ends. The brain reads only the protocol (GAME turn and space, CARD kind
and number, its own seat from the avatars) and the rule data, as a third-party
client would, so bots double as an executable check of PROTOCOL.md.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from .client import ConnectionClosed, LGMPClient
from .prompts import join_message, ready_message
from ..wire.packets import (
    CardAction,
    CardAnswer,
    CardDealt,
    CareerChoice,
    ClientPacket,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    ReadyAnswer,
    Reset,
    ServerPacket,
    Spin,
)
from ..wire.unity2022 import Lobby, UnityGameUpdate
from ..game.rules import (
    CARD_SPACES,
    CAREERS,
    CareerPointCard,
    SpaceKind,
    YoureTheBossCard,
    card_answers,
    default_answer,
    default_field,
    draw_spin,
    find_card,
    wire_salary,
)

log = logging.getLogger("lgmp.clients.bot")



@dataclass
class BotBrain:
    seat: int
    rng: random.Random
    tokens: dict[int, int] = field(default_factory=dict)
    finished: bool = False
    career_sent: bool = False
    results: FinalResults | None = None
    _last_spin_game: GameUpdate | None = None

    def react(self, packet: ServerPacket) -> list[ClientPacket]:
        if isinstance(packet, GameUpdate):
            if packet.turn == self.seat and packet.space not in CARD_SPACES and packet is not self._last_spin_game:
                self._last_spin_game = packet
                return [Spin(draw_spin(self.rng))]
        elif isinstance(packet, UnityGameUpdate):  # unity-2022: sent only once the turn is settled
            if packet.turn == self.seat:
                return [Spin(draw_spin(self.rng))]
        elif isinstance(packet, Lobby):  # unity-2022: a player's own index, before its first GAME
            self.seat = packet.index
        elif isinstance(packet, CardDealt):
            return self._answer(packet)
        elif isinstance(packet, FinalResults):
            self.results = packet
        return []

    def _answer(self, dealt: CardDealt) -> list[ClientPacket]:
        if dealt.kind == SpaceKind.FINISH:
            if self.career_sent:
                return []
            self.finished = self.career_sent = True
            return [self.career()]
        card = find_card(dealt.kind, dealt.number)
        if card is None:
            return []  # no such card: nothing it could answer would be accepted
        if isinstance(card, (CareerPointCard, YoureTheBossCard)):
            value = self.rng.choice(card_answers(card))  # a real choice: any of them
        else:
            value = default_answer(card)  # Brand Crisis's only move; Did You Know: take the token
        if card.action is CardAction.TOKEN:
            self.tokens[value] = self.tokens.get(value, 0) + 1
        return [CardAnswer(card.action, value)]

    def career(self) -> CareerChoice:
        """Pick the field it collected most tokens in, and a career there."""
        field_ = default_field(self.tokens)
        career = self.rng.choice(CAREERS[field_])
        return CareerChoice(field_, career.name, wire_salary(career))


@dataclass
class BotResult:
    name: str
    seat: int | None
    results: FinalResults | None  # the last game's
    packets_in: int
    packets_out: int
    games: list[FinalResults] = field(default_factory=list)  # every game played to the end, in order
    problem: str | None = None  # why it stopped early, in plain words


@dataclass(frozen=True, slots=True)
class BotEvent:
    """Something a bot did, for whoever shows progress (``lgmp bot`` prints a line for each)."""

    name: str
    what: str  # "seated", "started", "finished", "career", "game over"
    seat: int | None = None
    avatar: int = 0
    game: int = 0  # 1 for the first game it plays
    place: int = 0  # "finished": its place in the finish order
    career: CareerChoice | None = None  # "career": what it chose
    results: FinalResults | None = None  # "game over"


async def play_bot(
    host: str,
    port: int,
    code: str,
    *,
    name: str,
    seed: int | None = None,
    delay: float = 0.0,
    games: int = 1,
    dialect: str = "v1.0",
    on_event: Callable[[BotEvent], object] | None = None,
) -> BotResult:
    """Join ``code`` as a bot and play until ``games`` games end (or the room closes).

    Connecting may raise ``OSError``; everything after that is in the result:
    ``problem`` says in plain words why it stopped early.
    """
    rng = random.Random(seed)
    tell = on_event or (lambda event: None)
    async with await LGMPClient.connect(host, port, dialect=dialect) as client:
        def result(problem: str | None = None, brain: BotBrain | None = None, played: list | None = None) -> BotResult:
            return BotResult(name, client.seat, brain.results if brain else None, client.received, client.sent,
                             played or [], problem)

        answer = await client.join(code)
        if answer is not JoinAnswer.PLAYER:
            return result(join_message(answer, code))
        while True:
            free = client.free_avatars()
            if not free:
                return result(f"Room {code.upper()} has no free colour left.")
            verdict = await client.ready(name, rng.choice(free))
            if verdict is ReadyAnswer.ACCEPTED:
                break
            if verdict is not ReadyAnswer.ALREADY_TAKEN:
                return result(f"The name {name!r} was refused: {ready_message(verdict)}")
        tell(BotEvent(name, "seated", client.seat, client.avatar or 0))
        brain = BotBrain(client.seat, rng)
        played: list[FinalResults] = []
        in_game = False
        problem = None
        try:
            while len(played) < games:
                packet = await client.receive()
                if isinstance(packet, (GameUpdate, UnityGameUpdate)) and not in_game:
                    in_game = True
                    tell(BotEvent(name, "started", client.seat, client.avatar or 0, len(played) + 1))
                elif isinstance(packet, CardDealt) and packet.kind == SpaceKind.FINISH:
                    finished = client.last_game.occupancy[-1] if client.last_game else 0
                    tell(BotEvent(name, "finished", client.seat, client.avatar or 0, len(played) + 1, place=finished))
                elif isinstance(packet, FinalResults):
                    played.append(packet)
                    tell(BotEvent(name, "game over", client.seat, client.avatar or 0, len(played), results=packet))
                elif isinstance(packet, Reset):
                    if brain.results is None:
                        problem = "The room closed before the game ended (the host left or the server stopped)."
                        break
                    in_game = False
                    results = brain.results
                    brain = BotBrain(client.seat, rng)
                    brain.results = results
                    continue
                for reply in brain.react(packet):
                    if delay:
                        await trio.sleep(delay * rng.uniform(0.5, 1.5))
                    await client.send(reply)
                    if isinstance(reply, CareerChoice):
                        tell(BotEvent(name, "career", client.seat, client.avatar or 0, len(played) + 1, career=reply))
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            problem = "The server closed the connection."
        if problem is None:
            await client.leave()
        return result(problem, brain, played)
