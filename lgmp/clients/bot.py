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
from ..game.rules import (
    BRAND_CRISIS_DECK,
    CARD_SPACES,
    CAREER_POINT_DECK,
    CAREERS,
    DID_YOU_KNOW_DECK,
    SPINNER_WEDGES,
    YOURE_THE_BOSS_DECK,
    Field,
    SpaceKind,
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
                return [Spin(self.rng.choice(SPINNER_WEDGES))]
        elif isinstance(packet, CardDealt):
            return self._answer(packet)
        elif isinstance(packet, FinalResults):
            self.results = packet
        return []

    def _answer(self, card: CardDealt) -> list[ClientPacket]:
        n = card.number - 1
        if card.kind == SpaceKind.BRAND_CRISIS:
            return [CardAnswer(CardAction.MOVE, BRAND_CRISIS_DECK[n].move)]
        if card.kind == SpaceKind.CAREER_POINT:
            option = CAREER_POINT_DECK[n]
            return [CardAnswer(CardAction.MOVE, self.rng.choice((option.option_a, option.option_b)))]
        if card.kind == SpaceKind.YOURE_THE_BOSS:
            chosen = self.rng.choice(YOURE_THE_BOSS_DECK[n].options)
            self.tokens[chosen] = self.tokens.get(chosen, 0) + 1
            return [CardAnswer(CardAction.TOKEN, chosen)]
        if card.kind == SpaceKind.DID_YOU_KNOW:
            pile = DID_YOU_KNOW_DECK[n].field
            self.tokens[pile] = self.tokens.get(pile, 0) + 1
            return [CardAnswer(CardAction.TOKEN, pile)]
        if card.kind == SpaceKind.FINISH and not self.career_sent:
            self.finished = self.career_sent = True
            return [self.career()]
        return []

    def career(self) -> CareerChoice:
        """Pick the field it collected most tokens in, and a career there."""
        field_ = max(Field, key=lambda f: (self.tokens.get(f, 0), -f))
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
) -> BotResult:
    """Join ``code`` as a bot and play until ``games`` games end (or the room closes)."""
    rng = random.Random(seed)
    async with await LGMPClient.connect(host, port) as client:
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
