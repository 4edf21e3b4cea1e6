"""The 56-space board as SVG: where each space is drawn, its colours, and the pieces.

Pure geometry and markup: ``board_svg()`` draws the spaces once per page;
``pieces_svg(pieces)`` draws the pieces layer, which is all a live update has to
replace. Spaces run in a snake of ``COLUMNS`` per row, start at the top left,
finish at the bottom right.
"""

from __future__ import annotations

from html import escape

from ..game.rules import (
    AVATAR_NAMES,
    BOARD,
    BOARD_SIZE,
    DID_YOU_KNOW_FIELD,
    FIELD_NAMES,
    FINISH_SPACE,
    SPACE_NAMES,
    Avatar,
    Field,
    SpaceKind,
)
from ..game.rules import FIELD_COLOURS as PILE_COLOURS  # colour names; this module's FIELD_COLOURS are their tints

COLUMNS = 8
ROWS = BOARD_SIZE // COLUMNS
CELL_W, CELL_H, GAP, MARGIN = 96, 80, 10, 14
WIDTH = MARGIN * 2 + COLUMNS * CELL_W + (COLUMNS - 1) * GAP
HEIGHT = MARGIN * 2 + ROWS * CELL_H + (ROWS - 1) * GAP
PIECE_R = 13
assert COLUMNS * ROWS == BOARD_SIZE

AVATAR_COLOURS = {
    Avatar.RED: "#e53935", Avatar.YELLOW: "#fdd835", Avatar.GREEN: "#43a047",
    Avatar.BLUE: "#1e88e5", Avatar.PURPLE: "#8e24aa", Avatar.PINK: "#f06292",
}
# The piles' colours (rules.FIELD_COLOURS), as light tints the board's text stays readable on.
_TINTS = {"red": "#ef9a9a", "yellow": "#fff59d", "pink": "#f8bbd0", "green": "#a5d6a7", "purple": "#ce93d8", "blue": "#90caf9"}
FIELD_COLOURS = {field: _TINTS[colour] for field, colour in PILE_COLOURS.items()}
KIND_COLOURS = {
    SpaceKind.PLAIN: "#f6f1e7", SpaceKind.BRAND_CRISIS: "#ff8a65", SpaceKind.CAREER_POINT: "#80cbc4",
    SpaceKind.YOURE_THE_BOSS: "#ffd54f", SpaceKind.FINISH: "#37474f",
}
KIND_LABELS = {  # the deck names, with a Did You Know space's question mark and a loud FINISH
    **{kind: SPACE_NAMES[kind] for kind in (SpaceKind.BRAND_CRISIS, SpaceKind.CAREER_POINT, SpaceKind.YOURE_THE_BOSS)},
    SpaceKind.DID_YOU_KNOW: SPACE_NAMES[SpaceKind.DID_YOU_KNOW] + "?",
    SpaceKind.FINISH: SPACE_NAMES[SpaceKind.FINISH].upper(),
}
# The pile's field on a Did You Know space, short enough for its cell (colour says the rest).
_SHORT_FIELD = {field: FIELD_NAMES[field] for field in Field} | {
    Field.PUBLIC_RELATIONS: "Public Rel.", Field.BUSINESS_DATA_ANALYTICS: "Data Analytics",
    Field.GRAPHIC_MEDIA_MANAGEMENT: "Graphic Media",
}
# Where pieces sharing a space stand inside it: up to six, three by two.
_SLOTS = [(-26, -8), (0, -8), (26, -8), (-26, 18), (0, 18), (26, 18)]


def avatar_colour(avatar: int) -> str:
    return AVATAR_COLOURS.get(avatar, "#9e9e9e")


def avatar_name(avatar: int) -> str:
    return AVATAR_NAMES.get(avatar, "-")


def space_colour(space: int) -> str:
    kind = BOARD[space]
    if kind is SpaceKind.DID_YOU_KNOW:
        return FIELD_COLOURS[DID_YOU_KNOW_FIELD[space]]
    return KIND_COLOURS[kind]


def space_label(space: int) -> str:
    if space == 0:
        return "START"
    kind = BOARD[space]
    if kind is SpaceKind.DID_YOU_KNOW:
        return "? " + _SHORT_FIELD[DID_YOU_KNOW_FIELD[space]]
    return KIND_LABELS.get(kind, "")


def space_origin(space: int) -> tuple[int, int]:
    """The top-left corner of ``space``'s cell."""
    row, col = divmod(space, COLUMNS)
    if row % 2:
        col = COLUMNS - 1 - col
    return MARGIN + col * (CELL_W + GAP), MARGIN + row * (CELL_H + GAP)


def space_centre(space: int) -> tuple[int, int]:
    x, y = space_origin(space)
    return x + CELL_W // 2, y + CELL_H // 2


def board_svg(pieces: str = "") -> str:
    """The whole board; ``pieces`` (from ``pieces_svg``) goes in its ``#pieces`` layer."""
    track = " ".join(f"{x},{y}" for x, y in (space_centre(s) for s in range(BOARD_SIZE)))
    out = [
        f'<svg class="board" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="the board">',
        f'<polyline class="track" points="{track}"/>',
    ]
    for space in range(BOARD_SIZE):
        x, y = space_origin(space)
        kind = BOARD[space]
        dark = kind is SpaceKind.FINISH
        out.append(
            f'<g class="space kind-{int(kind)}" data-space="{space}">'
            f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" rx="10" fill="{space_colour(space)}"/>'
            f'<text class="num{" dark" if dark else ""}" x="{x + 8}" y="{y + 17}">{space}</text>'
            f'<text class="label{" dark" if dark else ""}" x="{x + CELL_W // 2}" y="{y + CELL_H - 8}">'
            f"{escape(space_label(space))}</text></g>"
        )
    out.append(f'<g id="pieces">{pieces}</g></svg>')
    return "".join(out)


def pieces_svg(pieces: list[tuple[int, int, int, str, bool]]) -> str:
    """The pieces layer: one circle per (seat, avatar, space, name, present)."""
    by_space: dict[int, list[tuple[int, int, int, str, bool]]] = {}
    for piece in sorted(pieces):
        by_space.setdefault(min(max(piece[2], 0), FINISH_SPACE), []).append(piece)
    out = []
    for space, here in by_space.items():
        cx, cy = space_centre(space)
        for slot, (seat, avatar, _, name, present) in enumerate(here[: len(_SLOTS)]):
            dx, dy = _SLOTS[slot]
            title = f"{name or 'seat ' + str(seat)} ({avatar_name(avatar)}), space {space}" + ("" if present else ", away")
            out.append(
                f'<g class="piece{"" if present else " away"}" data-seat="{seat}" data-space="{space}" '
                f'transform="translate({cx + dx},{cy + dy})"><title>{escape(title)}</title>'
                f'<circle r="{PIECE_R}" fill="{avatar_colour(avatar)}"/>'
                f'<text y="4">{seat}</text></g>'
            )
    return "".join(out)
