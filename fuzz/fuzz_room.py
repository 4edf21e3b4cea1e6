#!/usr/bin/env python3
"""Coverage-guided (atheris/libFuzzer) fuzzing of the room/hub core, through hypothesis.

    python fuzz/fuzz_room.py [libFuzzer options] [corpus dirs]
    python fuzz/fuzz_room.py -max_total_time=300

libFuzzer's bytes become hypothesis' choices: fuzz/room_target.py's
``room_program_test`` is a hypothesis test, and atheris calls its
``.hypothesis.fuzz_one_input``, so every input is one program (a prologue and a
list of steps: packets from several members, legal moves, disconnects, time
passing) run through ``lgmp.rooms.hub.Hub`` with every invariant checked. A failure
is a libFuzzer crash (input saved as fuzz/crash-<sha1>, git ignores it);
replaying it (``python fuzz/fuzz_room.py fuzz/crash-<sha1>``) prints the
failing program. Hypothesis also saves failing examples in its database, so the
next ``pytest tests/test_fuzz.py`` run replays them first.

Without corpus dirs it uses fuzz/corpus-out/room/ (git ignores it) and adds
-artifact_prefix=fuzz/, -max_len=4096 and -len_control=0 unless given. Needs the ``fuzz`` extra (atheris).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["lgmp", "fuzz"]):
    from fuzz.room_target import room_program_test  # noqa: E402

FUZZ = ROOT / "fuzz"


def main() -> None:
    args = sys.argv[1:]
    options = [a for a in args if a.startswith("-")]
    paths = [a for a in args if not a.startswith("-")]
    if not any(a.startswith("-artifact_prefix=") for a in options):
        options.append(f"-artifact_prefix={FUZZ}/")
    # Hypothesis draws a whole program from the bytes: short inputs overrun and are
    # discarded, so start with long inputs rather than growing them slowly.
    if not any(a.startswith("-max_len=") for a in options):
        options.append("-max_len=4096")
    if not any(a.startswith("-len_control=") for a in options):
        options.append("-len_control=0")
    if not paths:
        out = FUZZ / "corpus-out" / "room"
        out.mkdir(parents=True, exist_ok=True)
        paths = [str(out)]
    atheris.Setup([sys.argv[0], *options, *paths], room_program_test.hypothesis.fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
