"""``lgmp rooms``: a running server's rooms, from its HTTP API (``GET /api/rooms``)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

TIMEOUT = 10.0  # seconds: the API answers from memory; longer means it is not there


def fetch_rooms(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/api/rooms", timeout=TIMEOUT) as response:
        return json.load(response)


def format_rooms(rooms: list[dict]) -> list[str]:
    """One line per room: code, phase, whose turn, created, then its seats."""
    if not rooms:
        return ["no rooms"]
    lines = [f"{'code':<5} {'phase':<6} {'turn':>4}  {'created (UTC)':<20} seats"]
    for room in rooms:
        seats = ", ".join(
            f"{s['seat']}:{s['name'] or '(not ready)'}"
            + (f" ({s['avatar_name']})" if s["avatar_name"] else "")
            + (" away" if s["absent"] else "")
            for s in room["seats"]
        ) or "-"
        turn = str(room["turn"]) if room["turn"] else "-"
        lines.append(f"{room['code']:<5} {room['phase']:<6} {turn:>4}  {room['created'].replace('T', ' ').rstrip('Z'):<20} {seats}")
    return lines


def run_rooms(url: str, *, as_json: bool = False, out=print) -> int:
    try:
        data = fetch_rooms(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"lgmp rooms: cannot read {url}/api/rooms: {reason}", file=sys.stderr)
        return 1
    if as_json:
        out(json.dumps(data, indent=1))
        return 0
    for line in format_rooms(data["rooms"]):
        out(line)
    return 0
