"""What an LGMP packet means, in words: the dumper's one place for names and meanings.

``describe(packet)`` turns a decoded packet into a ``Description``: its tag, a
JSON-ready dict of fields (raw numbers plus their names and meanings) and a one-line
human summary. The names come from ``lgmp.game.rules`` and ``lgmp.wire.packets`` so the dump
speaks the same language as the server; only wording lives here.

A capture may hold anything a peer sent, so every number may be out of range: each
look-up falls back to "unknown" instead of raising. A dumper that crashes on odd
input is useless exactly when it is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lgmp.wire.codec import tag_of
from lgmp.wire.packets import (
    HOST_ROOM,
    CardAction,
    CardAnswer,
    CardDealt,
    CareerChoice,
    FinalResults,
    GameUpdate,
    JoinAnswer,
    JoinRequest,
    JoinResponse,
    Packet,
    ReadyAnswer,
    ReadyRequest,
    ReadyResponse,
    Reset,
    Spin,
    StartGame,
)
from lgmp.wire.unity2022 import (
    CardUpdate,
    EndTurn,
    HostUpdate,
    Land,
    Lobby,
    Move,
    PlayerUpdate,
    UnityGameUpdate,
    UnityJoinResponse,
    UnityReadyResponse,
)
from lgmp.game.rules import (
    AVATAR_NAMES,
    FIELD_NAMES,
    SPACE_NAMES,
    SPIN_NUMBERS,
    BrandCrisisCard,
    CareerPointCard,
    DidYouKnowCard,
    SpaceKind,
    YoureTheBossCard,
    card_text,
    card_title,
    career_salary,
    find_card,
    find_career,
    ordinal,
    wire_salary,
)

UNKNOWN = "unknown"

JOIN_MEANINGS: Mapping[int, str] = {
    JoinAnswer.HOST: "host",
    JoinAnswer.PLAYER: "player",
    JoinAnswer.LOBBY_FULL: "lobby full",
    JoinAnswer.ROOM_NOT_FOUND: "room not found",
    JoinAnswer.GAME_STARTED: "game already started",
}

READY_MEANINGS: Mapping[int, str] = {
    ReadyAnswer.UPDATE: "update",
    ReadyAnswer.ACCEPTED: "accepted",
    ReadyAnswer.EMPTY_NAME: "no username",
    ReadyAnswer.NAME_TOO_LONG: "username too long",
    ReadyAnswer.INVALID_CHARACTERS: "invalid characters",
    ReadyAnswer.ALREADY_TAKEN: "already taken",
    ReadyAnswer.PROFANE: "profanity",
}

CARD_ACTION_MEANINGS: Mapping[int, str] = {CardAction.MOVE: "move", CardAction.TOKEN: "token"}


@dataclass(frozen=True, slots=True)
class Description:
    """A packet in words: ``tag``, JSON-ready ``fields`` and a one-line ``text``."""

    tag: str
    fields: dict[str, Any]
    text: str  # the summary after the tag, e.g. "response=4 (room not found)"

    @property
    def line(self) -> str:
        """Tag and summary, as the text dump prints them."""
        return f"{self.tag} {self.text}" if self.text else self.tag


# --- small helpers -------------------------------------------------------------


def show_text(value: str) -> str:
    """Wire text made printable and unambiguous: printable ASCII as is, the rest ``\\xNN``.

    The codec decodes non-ASCII bytes as surrogate escapes; turning them back into
    bytes and escaping shows exactly what was on the wire. Quote and backslash are
    escaped too, so the result can be quoted and read back without ambiguity.
    """
    raw = value.encode("ascii", "surrogateescape")
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in raw)


def quoted(value: str) -> str:
    return f'"{show_text(value)}"'


def _name(names: Mapping[int, str], value: int) -> str:
    return names.get(value, UNKNOWN)


def field_name(value: int) -> str:
    return _name(FIELD_NAMES, value)


def avatar_name(value: int) -> str | None:
    """An avatar's colour, None for 0 (empty seat or not ready)."""
    return None if value == 0 else _name(AVATAR_NAMES, value)


def thousands(value: int) -> str:
    return f"{value}k"


def signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


# --- client -> server ------------------------------------------------------------


def _join_request(p: JoinRequest) -> tuple[dict[str, Any], str]:
    create = p.room == HOST_ROOM
    return (
        {"room": show_text(p.room), "create": create},
        f"room={show_text(p.room)}" + (" (create a room)" if create else ""),
    )


def _ready_request(p: ReadyRequest) -> tuple[dict[str, Any], str]:
    avatar = avatar_name(p.avatar) or "none"
    return (
        {"name": show_text(p.name), "avatar": p.avatar, "avatar_name": avatar},
        f"name={quoted(p.name)} avatar={p.avatar} ({avatar})",
    )


def _start(p: StartGame) -> tuple[dict[str, Any], str]:
    return {}, "(start the game)"


def _spin(p: Spin) -> tuple[dict[str, Any], str]:
    in_range = p.number in SPIN_NUMBERS
    return {"number": p.number, "in_range": in_range}, f"number={p.number}" + ("" if in_range else " (out of range)")


def _card_answer(p: CardAnswer) -> tuple[dict[str, Any], str]:
    action = _name(CARD_ACTION_MEANINGS, p.action)
    if p.action == CardAction.MOVE:
        meaning = f"{-p.value} back" if p.value < 0 else f"{p.value} forward" if p.value else "stay"
    elif p.action == CardAction.TOKEN:
        meaning = "decline" if p.value == 0 else field_name(p.value)
    else:
        meaning = UNKNOWN
    return (
        {"action": p.action, "action_meaning": action, "value": p.value, "value_meaning": meaning},
        f"action={p.action} ({action}) value={p.value} ({meaning})",
    )


def _career_choice(p: CareerChoice) -> tuple[dict[str, Any], str]:
    field = field_name(p.field)
    career = find_career(p.field, p.career)
    text = f"field={p.field} ({field}) career={quoted(p.career)} salary={thousands(p.salary)}"
    # Say what the server will object to, so a refused CRER is obvious in the dump.
    if career is None:
        text += " (not a career of this field)"
    elif wire_salary(career) != p.salary:
        text += f" (catalogue salary {thousands(wire_salary(career))})"
    return (
        {
            "field": p.field,
            "field_name": field,
            "career": show_text(p.career),
            "known_career": career is not None,
            "salary": p.salary,
            "salary_dollars": career_salary(p.career, p.salary),
        },
        text,
    )


# --- server -> client ------------------------------------------------------------


def _join_response(p: JoinResponse) -> tuple[dict[str, Any], str]:
    meaning = _name(JOIN_MEANINGS, p.response)
    fields: dict[str, Any] = {"response": p.response, "meaning": meaning}
    text = f"response={p.response} ({meaning})"
    if p.room is not None:
        fields["room"] = show_text(p.room)
        text += f" room={show_text(p.room)}"
    return fields, text


def _avatars(avatars: Sequence[int]) -> str:
    def one(value: int) -> str:
        name = avatar_name(value)
        return "-" if name is None else name if name != UNKNOWN else f"?{value}"

    return "[" + " ".join(f"{seat}:{one(v)}" for seat, v in enumerate(avatars, start=1)) + "]"


def _ready_response(p: ReadyResponse) -> tuple[dict[str, Any], str]:
    meaning = _name(READY_MEANINGS, p.response)
    return (
        {
            "response": p.response,
            "meaning": meaning,
            "avatars": list(p.avatars),
            "avatar_names": [avatar_name(v) for v in p.avatars],
        },
        f"response={p.response} ({meaning}) avatars={_avatars(p.avatars)}",
    )


def _game_update(p: GameUpdate) -> tuple[dict[str, Any], str]:
    space = _name(SPACE_NAMES, p.space)
    occupied = [(i, n) for i, n in enumerate(p.occupancy) if n]
    turn = f"turn={p.turn}" + (" (all finished)" if p.turn == 0 else "")
    players = " ".join(f"{i}:{n}" for i, n in occupied) or "none"
    return (
        {"turn": p.turn, "space": p.space, "space_name": space, "occupied": [list(pair) for pair in occupied]},
        f"{turn} space={p.space} ({space}) players on {players}",
    )


def _card_fields(kind: int, number: int) -> dict[str, Any]:
    """The dealt card's data as JSON fields (nothing for a Finish card or no such card)."""
    card = find_card(kind, number)
    if isinstance(card, BrandCrisisCard):
        return {"move": card.move}
    if isinstance(card, CareerPointCard):
        return {"options": [card.option_a, card.option_b]}
    if isinstance(card, YoureTheBossCard):
        return {"options": [int(f) for f in card.options], "option_names": [FIELD_NAMES[f] for f in card.options]}
    if isinstance(card, DidYouKnowCard):
        return {"field": int(card.field), "field_name": FIELD_NAMES[card.field]}
    return {}


def _card_dealt(p: CardDealt) -> tuple[dict[str, Any], str]:
    deck = SPACE_NAMES.get(p.kind) if p.kind != SpaceKind.PLAIN else None
    meaning = card_text(p.kind, p.number)
    fields = {"kind": p.kind, "deck": deck or UNKNOWN, "number": p.number, "meaning": meaning}
    fields.update(_card_fields(p.kind, p.number))
    if deck is None:
        return fields, f"kind={p.kind} (unknown deck) #{p.number}"
    return fields, f"{card_title(p.kind, p.number)} ({meaning})"


def _final_results(p: FinalResults) -> tuple[dict[str, Any], str]:
    seats, parts = [], []
    for seat, (place, career, salary) in enumerate(zip(p.places, p.careers, p.salaries), start=1):
        seats.append(
            {"seat": seat, "place": place, "career": show_text(career), "salary": salary,
             "salary_dollars": career_salary(career, salary)}
        )
        if place == 0 and career == "" and salary == 0:  # an empty seat, as WIRE.md defines it
            parts.append(f"{seat}:-")
        else:
            shown = ordinal(place) if place else "-"
            parts.append(f"{seat}:({shown} {quoted(career)} {thousands(salary)})")
    return {"seats": seats}, " ".join(parts)


def _reset(p: Reset) -> tuple[dict[str, Any], str]:
    return {}, "(back to the lobby)"


_DESCRIBERS: dict[type, Callable[[Any], tuple[dict[str, Any], str]]] = {
    JoinRequest: _join_request,
    ReadyRequest: _ready_request,
    StartGame: _start,
    Spin: _spin,
    CardAnswer: _card_answer,
    CareerChoice: _career_choice,
    JoinResponse: _join_response,
    ReadyResponse: _ready_response,
    GameUpdate: _game_update,
    CardDealt: _card_dealt,
    FinalResults: _final_results,
    Reset: _reset,
}


# --- the Unity client's 2022 dialect (PROTOCOL.md chapter 12) -----------------------------

AVATAR_FLAG_MEANINGS: Mapping[int, str] = {1: "free", 0: "taken"}


def _flags(free: Sequence[int]) -> str:
    """2022 avatar flags, by avatar: ``[Red:free Yellow:taken ...]``."""
    return "[" + " ".join(
        f"{avatar_name(a) or a}:{_name(AVATAR_FLAG_MEANINGS, f)}" for a, f in enumerate(free, start=1)
    ) + "]"


def _land(p: Land) -> tuple[dict[str, Any], str]:
    kind = _name(SPACE_NAMES, p.kind)
    return {"kind": p.kind, "kind_name": kind, "category": p.category}, f"kind={p.kind} ({kind}) category={p.category} (ignored)"


def _end_turn(p: EndTurn) -> tuple[dict[str, Any], str]:
    return {}, "(end of turn; ignored)"


def _unity_join_response(p: UnityJoinResponse) -> tuple[dict[str, Any], str]:
    fields, text = _join_response(JoinResponse(p.response, p.room) if p.response == JoinAnswer.HOST else JoinResponse(p.response))
    if p.free is not None:
        fields["free"] = list(p.free)
        text += f" avatars={_flags(p.free)}"
    return fields, text


def _unity_ready_response(p: UnityReadyResponse) -> tuple[dict[str, Any], str]:
    name = _name(READY_MEANINGS, p.name_answer) if p.name_answer else UNKNOWN
    avatar = _name({1: "free, yours if the name is accepted", 0: "taken or no such avatar"}, p.avatar_answer)
    return (
        {"name_answer": p.name_answer, "name_meaning": name, "avatar_answer": p.avatar_answer, "avatar_meaning": avatar},
        f"name={p.name_answer} ({name}) avatar={p.avatar_answer} ({avatar})",
    )


def _lobby(p: Lobby) -> tuple[dict[str, Any], str]:
    return {"index": p.index}, f"index={p.index} (a player's index)"


def _host_update(p: HostUpdate) -> tuple[dict[str, Any], str]:
    avatar = avatar_name(p.avatar) or "none"
    return (
        {"index": p.index, "avatar": p.avatar, "avatar_name": avatar, "name": show_text(p.name)},
        f"index={p.index} avatar={p.avatar} ({avatar}) name={quoted(p.name)}",
    )


def _player_update(p: PlayerUpdate) -> tuple[dict[str, Any], str]:
    return {"free": list(p.free)}, f"avatars={_flags(p.free)}"


def _unity_game_update(p: UnityGameUpdate) -> tuple[dict[str, Any], str]:
    return {"turn": p.turn}, f"turn={p.turn}" + (" (all finished)" if p.turn == 0 else "")


def _move(p: Move) -> tuple[dict[str, Any], str]:
    return {"turn": p.turn, "spaces": p.spaces}, f"turn={p.turn} spaces={signed(p.spaces)}"


def _card_update(p: CardUpdate) -> tuple[dict[str, Any], str]:
    return {"player": p.player}, f"player={p.player} (answered the card)"


_DESCRIBERS.update({
    Land: _land,
    EndTurn: _end_turn,
    UnityJoinResponse: _unity_join_response,
    UnityReadyResponse: _unity_ready_response,
    Lobby: _lobby,
    HostUpdate: _host_update,
    PlayerUpdate: _player_update,
    UnityGameUpdate: _unity_game_update,
    Move: _move,
    CardUpdate: _card_update,
})


def describe(packet: Packet) -> Description:
    """``packet`` in words: tag, fields with names and meanings, one-line summary."""
    fields, text = _DESCRIBERS[type(packet)](packet)
    return Description(tag_of(packet), fields, text)
