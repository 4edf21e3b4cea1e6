"""``lgmp bot``: bots join a room and play, and say how it goes.

A line when each bot sits down, when the game starts, when each bot finishes and
one per game with its standings; problems in plain words on stderr, each once
however many bots met it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import trio

from ..game.rules import career_salary, format_salary, ordinal
from ..wire.packets import FinalResults
from .board import avatar_name, plural
from .bot import BotEvent, play_bot
from .play import connect_error


async def run_bots(host: str, port: int, code: str, *, count: int, delay: float, seed: int | None, games: int,
                   out: Callable[[str], object] = print, dialect: str = "v1.0") -> int:
    """Play ``games`` games with ``count`` bots; the exit status (0 when every bot played them all)."""
    report = BotReport(code, out)

    async def one(i: int) -> None:
        name = f"Bot{i + 1}"
        try:
            result = await play_bot(host, port, code, name=name, seed=None if seed is None else seed + i,
                                    delay=delay, games=games, on_event=report.event, dialect=dialect)
        except OSError as exc:
            report.problem(name, f"cannot connect to {host}:{port}: {connect_error(exc)}. Is `lgmp serve` running there?")
            return
        if result.problem:
            report.problem(name, result.problem)
        report.played[name] = len(result.games)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
            await trio.sleep(0.05)  # join in order, so seats follow bot numbers
    return report.finish(count, games)


class BotReport:
    def __init__(self, code: str, out: Callable[[str], object]):
        self.code = code
        self.out = out
        self.names: dict[int, str] = {}  # seat -> bot name
        self.started: set[int] = set()  # games whose start was said (every bot sees it)
        self.reported: set[int] = set()  # games whose standings were said
        self.problems: dict[str, list[str]] = {}  # a problem -> the bots that had it
        self.played: dict[str, int] = {}  # bot name -> games played to the end

    def _say(self, line: str) -> None:
        self.out(line)
        sys.stdout.flush()

    def event(self, event: BotEvent) -> None:
        if event.what == "seated":
            self.names[event.seat] = event.name
            self._say(f"{event.name} joined room {self.code} as {avatar_name(event.avatar)} (seat {event.seat}).")
        elif event.what == "started" and event.game not in self.started:
            self.started.add(event.game)
            self._say(f"Game {event.game} started in room {self.code}.")
        elif event.what == "finished":
            self._say(f"{event.name} finished {ordinal(event.place)}.")
        elif event.what == "game over" and event.game not in self.reported:
            self.reported.add(event.game)
            self._say(f"Game {event.game} over: {self._standings(event.results)}.")

    def _standings(self, results: FinalResults) -> str:
        """'1st Bot2 (System Architect, $105,000), 2nd seat 3 (...)': a seat no bot holds is someone else."""
        rows = sorted((place, seat) for seat, place in enumerate(results.places, start=1) if place)
        parts = []
        for place, seat in rows:
            career = results.careers[seat - 1]
            salary = career_salary(career, results.salaries[seat - 1])
            parts.append(f"{ordinal(place)} {self.names.get(seat, f'seat {seat}')} ({career}, {format_salary(salary)})")
        return ", ".join(parts)

    def problem(self, name: str, text: str) -> None:
        self.problems.setdefault(text, []).append(name)

    def finish(self, count: int, games: int) -> int:
        for text, names in self.problems.items():
            who = "" if len(names) == count else ", ".join(names) + ": "
            print(f"lgmp bot: {who}{text}", file=sys.stderr)
        if sum(1 for n in self.played.values() if n >= games) < count:
            return 1
        self._say(f"Done: {plural(count, 'bot')} played {plural(games, 'game')} in room {self.code}.")
        return 0
