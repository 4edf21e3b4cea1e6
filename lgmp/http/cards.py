"""What a card on the table says, in words for a spectator, from the rule data alone."""

from __future__ import annotations

from ..game.rules import (
    BRAND_CRISIS_DECK,
    CAREER_POINT_DECK,
    DID_YOU_KNOW_DECK,
    FIELD_NAMES,
    YOURE_THE_BOSS_DECK,
    SpaceKind,
)

DECK_NAMES = {
    SpaceKind.PLAIN: "Plain",
    SpaceKind.BRAND_CRISIS: "Brand Crisis",
    SpaceKind.CAREER_POINT: "Career Point",
    SpaceKind.YOURE_THE_BOSS: "You're the Boss",
    SpaceKind.DID_YOU_KNOW: "Did You Know",
    SpaceKind.FINISH: "Finish",
}
_FINISH_TEXT = {1: "First to finish!", 2: "Finished.", 3: "Last to finish."}


def describe_move(move: int) -> str:
    if move == 0:
        return "stay put"
    steps = abs(move)
    return f"move {steps} space{'s' if steps != 1 else ''} {'forward' if move > 0 else 'back'}"


def card_title(kind: int, number: int) -> str:
    return f"{DECK_NAMES.get(kind, f'Deck {kind}')} #{number}"


def card_text(kind: int, number: int) -> str:
    """What card ``number`` of the deck ``kind`` deals does, as a sentence."""
    index = number - 1
    try:
        if index < 0:
            raise IndexError(number)
        if kind == SpaceKind.BRAND_CRISIS:
            return f"Your brand takes a hit: {describe_move(BRAND_CRISIS_DECK[index].move)}."
        if kind == SpaceKind.CAREER_POINT:
            card = CAREER_POINT_DECK[index]
            return f"Choose: A, {describe_move(card.option_a)}; or B, {describe_move(card.option_b)}."
        if kind == SpaceKind.YOURE_THE_BOSS:
            options = ", ".join(FIELD_NAMES[f] for f in YOURE_THE_BOSS_DECK[index].options)
            return f"Every player picks a token: {options}."
        if kind == SpaceKind.DID_YOU_KNOW:
            name = FIELD_NAMES[DID_YOU_KNOW_DECK[index].field]
            return f"Every player may take {'an' if name[0] in 'AEIOU' else 'a'} {name} token."
        if kind == SpaceKind.FINISH:
            return _FINISH_TEXT[number]
    except (IndexError, KeyError):
        pass
    return "An unknown card."
