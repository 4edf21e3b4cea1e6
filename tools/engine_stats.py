"""Auto-play many games with the engine; report game length and engine speed.

    python -m tools.engine_stats --games 10000

For 1 and for 6 players, plays `--games` games, each with its own seed, letting
`Game.auto_play` do every duty (spins drawn from the wedges, fixed card answers and
career picks). A turn is one spin. Prints mean and max turns per game and how many
whole games per second the engine plays; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from lgmp.game.engine import Game


def play_one(player_count: int, seed: int) -> int:
    """Play one game to its end; return the number of spins it took."""
    seats = tuple(range(1, player_count + 1))
    game = Game({s: (f"P{s}", s) for s in seats}, random.Random(seed), started_at=0.0)
    spins = 0
    while not game.is_over:
        for seat in seats:
            if game.owes(seat) is not None:
                spins += game.auto_play(seat).landed is not None
    return spins


def run(player_count: int, games: int, base_seed: int) -> tuple[float, int, float]:
    """(mean turns, max turns, games per second) over `games` games."""
    total = most = 0
    # On a terminal, one line rewritten in place; in a log, ten lines.
    live = sys.stderr.isatty()
    step = max(1, games // (100 if live else 10))
    started = time.perf_counter()
    for i in range(games):
        # Seeds differ between games and between the 1- and 6-player runs.
        turns = play_one(player_count, base_seed + player_count * 1_000_000 + i)
        total += turns
        most = max(most, turns)
        if (i + 1) % step == 0 or i + 1 == games:
            print(f"{player_count} player(s): {i + 1}/{games} games",
                  end="\r" if live else "\n", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    if live:
        print(file=sys.stderr)
    return total / games, most, games / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=10_000, help="games per player count")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error("--games must be at least 1")

    rows = [(n, *run(n, args.games, args.seed)) for n in (1, 6)]
    print(f"{'players':>7}  {'games':>7}  {'mean turns':>10}  {'max turns':>9}  "
          f"{'games/s':>8}")
    for n, mean, most, rate in rows:
        print(f"{n:>7}  {args.games:>7}  {mean:>10.2f}  {most:>9}  {rate:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
