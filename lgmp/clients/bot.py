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
from dataclasses import dataclass, field

import trio

from .client import ConnectionClosed, LGMPClient
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
    results: FinalResults | None
    packets_in: int
    packets_out: int


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
) -> BotResult:
    """Join ``code`` as a bot and play until ``games`` games end (or the room closes)."""
    rng = random.Random(seed)
    async with await LGMPClient.connect(host, port, dialect=dialect) as client:
        answer = await client.join(code)
        if answer is not JoinAnswer.PLAYER:
            log.warning("bot %s: JOIN %s answered %d (%s)", name, code, answer, answer.name)
            return BotResult(name, None, None, client.received, client.sent)
        while True:
            free = client.free_avatars()
            if not free:
                log.warning("bot %s: no free avatar in %s", name, code)
                return BotResult(name, None, None, client.received, client.sent)
            verdict = await client.ready(name, rng.choice(free))
            if verdict is ReadyAnswer.ACCEPTED:
                break
            if verdict is not ReadyAnswer.ALREADY_TAKEN:
                log.warning("bot %s: REDY answered %d", name, verdict)
                return BotResult(name, None, None, client.received, client.sent)
        brain = BotBrain(client.seat, rng)
        played = 0
        try:
            while played < games:
                packet = await client.receive()
                if isinstance(packet, Reset):
                    if brain.results is None:
                        break  # the room ended without a game result
                    played += 1
                    results = brain.results
                    brain = BotBrain(client.seat, rng)
                    brain.results = results
                    continue
                for reply in brain.react(packet):
                    if delay:
                        await trio.sleep(delay * rng.uniform(0.5, 1.5))
                    await client.send(reply)
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return BotResult(name, client.seat, brain.results, client.received, client.sent)
