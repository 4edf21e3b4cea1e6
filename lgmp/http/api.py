"""The JSON the API answers with: rooms (from ``RoomView``) and stored results. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from ..game.rules import FIELD_NAMES, Field, card_text, card_title
from ..results.store import GameSummary, PlayerRow
from ..rooms.names import ROOM_CODE_LENGTH, ROOM_CODE_LETTERS
from ..rooms.view import RoomView
from .board import avatar_name


def parse_room_code(text: str) -> str | None:
    """A room code as JOIN matches it (any letter case), upper-cased; None if malformed."""
    code = text.upper()
    if len(code) == ROOM_CODE_LENGTH and all(c in ROOM_CODE_LETTERS for c in code):
        return code
    return None


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def room_json(view: RoomView, created: float, *, detail: bool = False) -> dict:
    """A room for ``/api/rooms``; with ``detail``, its board too (``/api/rooms/{code}``).
    ``created`` is the room's opening as a unix time."""
    seats = []
    for seat in view.seats_in_order():
        entry = {
            "seat": seat.number,
            "name": seat.name,
            "avatar": seat.avatar,
            "avatar_name": avatar_name(seat.avatar) if seat.avatar else None,
            "ready": seat.avatar != 0,
            "absent": not seat.present,
        }
        if detail:
            entry |= {
                "space": seat.space,
                "tokens": {FIELD_NAMES[f]: seat.tokens[f - 1] for f in Field},
                "place": seat.place,
                "career": seat.career,
                "salary": seat.salary,
            }
        seats.append(entry)
    out = {
        "code": view.code,
        "created": iso(created),
        "created_unix": round(created, 3),
        "phase": view.phase,
        "turn": view.turn or None,
        "seats": seats,
        "games_finished": view.games,
    }
    if detail:
        card = view.card
        out["card"] = None if card is None else {
            "kind": card.kind, "number": card.number,
            "title": card_title(card.kind, card.number), "text": card_text(card.kind, card.number),
            "shown_to": list(card.seats), "awaiting": sorted(card.awaiting),
        }
        out["space"] = view.space
        out["standings"] = [
            {"seat": seat, "name": view.name_of(seat), "avatar": view.avatar_of(seat), "place": place,
             "career": career, "salary": salary}
            for seat, place, career, salary in view.standings
        ]
    return out


def game_json(game: GameSummary) -> dict:
    return {
        "id": game.id, "room": game.room, "started": iso(game.started), "ended": iso(game.ended),
        "duration_s": round(game.duration, 3), "seed": game.seed, "players": game.player_count,
        "winner": game.winner,
    }


def player_json(p: PlayerRow) -> dict:
    return {
        "seat": p.seat, "name": p.name, "avatar": int(p.avatar), "avatar_name": p.avatar_colour,
        "place": p.place, "field": None if p.field is None else int(p.field), "field_name": p.field_name,
        "career": p.career, "salary": p.salary, "auto_career": p.auto_career,
        "tokens": {FIELD_NAMES[f]: n for f, n in zip(Field, p.tokens)},
    }
