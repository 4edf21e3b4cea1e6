"""Server-rendered pages: Jinja templates (package data) filled from room views,
activity and stored results. A live update is the same macros rendered again, one
fragment per region of the page, so the first paint and every update agree.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..game.rules import (
    BOARD,
    FIELD_LETTERS,
    FIELD_NAMES,
    SPACE_NAMES,
    Field,
    SpaceKind,
    card_text,
    card_title,
    format_salary,
    ordinal,
)
from ..game.rules import FIELD_COLOURS as PILE_COLOURS  # colour names; the board's FIELD_COLOURS are their tints
from ..results.store import GameSummary, Leaderboard, PlayerRow
from ..rooms.view import RoomView
from . import plots
from .activity import BUCKET_SECONDS, Bucket
from .board import AVATAR_COLOURS, FIELD_COLOURS, KIND_COLOURS, avatar_colour, avatar_name, board_svg, pieces_svg

_env = Environment(loader=PackageLoader("lgmp.http", "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
# Strong versions of the piles' colours, for bars and token counts (the board uses tints).
_INKS = {"red": "#e53935", "yellow": "#f9a825", "pink": "#ec407a", "green": "#43a047", "purple": "#8e24aa", "blue": "#1e88e5"}
FIELD_INK = {field: _INKS[colour] for field, colour in PILE_COLOURS.items()}


def iso_minute(unix: float) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).strftime("%Y-%m-%d %H:%M")


def money(dollars: int | None) -> str:
    return "" if dollars is None else format_salary(dollars)


def sentence(phrase: str) -> str:
    """'move 3 spaces back' -> 'Move 3 spaces back.'"""
    return phrase[:1].upper() + phrase[1:] + "."


# --- one room ------------------------------------------------------------------------------


def _who(view: RoomView, seat: int) -> dict:
    avatar = view.avatar_of(seat)
    return {"seat": seat, "name": view.name_of(seat) or f"Seat {seat}", "colour": avatar_colour(avatar),
            "avatar_name": avatar_name(avatar)}


def _caption(view: RoomView) -> str:
    move = view.last_move
    if move is None or view.phase != "game":
        return ""
    who = view.name_of(move.seat) or f"Seat {move.seat}"
    if move.by_card:
        return f"{who} moved by a card: {move.start} \u2192 {move.end}"
    return f"{who} spun {move.spin}: {move.start} \u2192 {move.end}"


def room_context(view: RoomView) -> dict:
    seats = []
    for seat in view.seats_in_order():
        seats.append({
            **_who(view, seat.number),
            "ready": seat.avatar != 0, "present": seat.present, "space": seat.space,
            "tokens": [{"letter": FIELD_LETTERS[f], "field": FIELD_NAMES[f], "colour": FIELD_INK[f], "count": seat.tokens[f - 1]}
                       for f in Field],
            "place": ordinal(seat.place) if seat.place else "", "career": seat.career or "", "salary": money(seat.salary),
        })
    card = None
    if view.card is not None:
        c = view.card
        card = {"title": card_title(c.kind, c.number), "text": sentence(card_text(c.kind, c.number)), "kind": c.kind,
                "deck": SPACE_NAMES.get(c.kind, ""),
                "awaiting": [_who(view, s) for s in sorted(c.awaiting)]}
    standings = [{**_who(view, seat), "place": ordinal(place), "career": career, "salary": money(salary)}
                 for seat, place, career, salary in view.standings]
    return {
        "code": view.code, "phase": view.phase, "seats": seats, "card": card, "standings": standings,
        "turn": _who(view, view.turn) if view.phase == "game" and view.turn else None,
        "space_kind": SPACE_NAMES.get(view.space, "") if view.phase == "game" else "",
        "caption": _caption(view), "games": view.games,
    }


def _pieces(view: RoomView) -> str:
    if view.phase != "game" and not view.standings:
        return ""  # a lobby shows no pieces; after a game they stay where they finished
    return pieces_svg([(s.number, s.avatar, s.space, s.name, s.present) for s in view.seats_in_order() if s.avatar])


def room_fragments(view: RoomView) -> dict[str, str]:
    """Each live region of the room page, rendered: what an update replaces."""
    parts = _env.get_template("_room.html").module
    ctx = room_context(view)
    return {
        "pieces": _pieces(view),
        "status": str(parts.status(ctx)),
        "card": str(parts.card(ctx)),
        "seats": str(parts.seats(ctx)),
        "standings": str(parts.standings(ctx)),
        "phase": view.phase,
    }


def room_page(view: RoomView) -> str:
    ctx = room_context(view)
    return _env.get_template("room.html").render(room=ctx, board=Markup(board_svg(_pieces(view))), legend=_legend())


def closed_room_page(code: str) -> str:
    return _env.get_template("message.html").render(title=f"Room {code}", message=f"There is no room {code} (any more).")


def _legend() -> list[dict]:
    items = [(SPACE_NAMES[kind], KIND_COLOURS[kind])
             for kind in (SpaceKind.BRAND_CRISIS, SpaceKind.CAREER_POINT, SpaceKind.YOURE_THE_BOSS)]
    items += [(f"{SPACE_NAMES[SpaceKind.DID_YOU_KNOW]}: {FIELD_NAMES[f]}", FIELD_COLOURS[f]) for f in Field]
    return [{"label": label, "colour": colour} for label, colour in items]


# --- the overview ------------------------------------------------------------------------------


def overview_context(rooms: list[dict], gauges: dict, buckets: list[Bucket], games_per_minute: float, uptime: float,
                     *, shown: int = 100) -> dict:
    moves = [(f"-{(len(buckets) - 1 - i) * BUCKET_SECONDS:.0f}s", b.moves) for i, b in enumerate(buckets)]
    chart = plots.columns(moves, width=1200, height=150, colour="#5c6bc0", css_class="chart activity", every=12)
    games = [(f"-{(len(buckets) - 1 - i) * BUCKET_SECONDS:.0f}s", b.games_finished) for i, b in enumerate(buckets)]
    games_chart = plots.columns(games, width=1200, height=100, colour="#26a69a", css_class="chart activity", every=12)
    return {"rooms": rooms[:shown], "more": max(0, len(rooms) - shown), "total_rooms": len(rooms), **gauges,
            "games_per_minute": games_per_minute, "uptime": _duration(uptime),
            "chart": Markup(chart), "games_chart": Markup(games_chart), "bucket": BUCKET_SECONDS}


def overview_page(ctx: dict) -> str:
    return _env.get_template("overview.html").render(o=ctx)


def overview_fragment(ctx: dict) -> str:
    return str(_env.get_template("_overview.html").module.live(ctx))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# --- results -----------------------------------------------------------------------------------


def results_context(games: list[GameSummary], players: list[PlayerRow], board: Leaderboard | None, total: int) -> dict:
    careers = Counter(p.career for p in players if p.career)
    fields = Counter(p.field for p in players if p.field is not None)
    career_field = {p.career: p.field for p in players if p.career and p.field is not None}
    by_place: dict[int, list[int]] = {}
    for p in players:
        if p.place and p.salary is not None:
            by_place.setdefault(p.place, []).append(p.salary)
    return {
        "total": total, "sampled": len(games),
        "games": [{"id": g.id, "room": g.room, "ended_text": iso_minute(g.ended), "player_count": g.player_count,
                   "duration": g.duration, "winner": g.winner} for g in games[:20]],
        "leaderboard": board,
        "careers_plot": Markup(plots.bar_chart(
            [(name, n, FIELD_INK.get(career_field.get(name))) for name, n in careers.most_common(12)], label_width=300)),
        "fields_plot": Markup(plots.bar_chart(
            [(FIELD_NAMES[f], fields.get(f, 0), FIELD_INK[f]) for f in Field], label_width=230)),
        "durations_plot": Markup(plots.histogram([g.duration for g in games], unit=" s", colour="#5c6bc0")),
        "salaries_plot": Markup(plots.histogram([p.salary / 1000 for p in players if p.salary is not None],
                                                unit="k", colour="#26a69a")),
        "salary_by_place_plot": Markup(plots.bar_chart(
            [(f"{ordinal(place)} place", sum(s) / len(s) / 1000, None) for place, s in sorted(by_place.items())],
            unit="k avg", label_width=120)),
    }


def results_page(ctx: dict | None, problem: str | None = None) -> str:
    return _env.get_template("results.html").render(r=ctx, problem=problem, money=money, ordinal=ordinal)


_env.globals.update(money=money, ordinal=ordinal, avatar_colours=AVATAR_COLOURS, kinds=SpaceKind, board=BOARD)
