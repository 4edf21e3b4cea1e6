#!/usr/bin/env python3
"""Coverage-guided (atheris/libFuzzer) fuzzing of the LGMP decoders.

    python fuzz/fuzz_decoder.py c2s [libFuzzer options] [corpus dirs]
    python fuzz/fuzz_decoder.py s2c -max_total_time=300

Each input is one byte stream for the chosen direction; fuzz/decoder_target.py's
``check_decoder`` checks it (only framing failures, same result whole / byte
by byte / chunked / interpreted, exact re-encoding, bounded buffer). A failed
check is a libFuzzer crash: the input is saved as fuzz/crash-<sha1> (git
ignores it) and can be replayed with ``python fuzz/fuzz_decoder.py c2s
fuzz/crash-<sha1>``.

Without corpus dirs on the command line the driver uses
fuzz/corpus-out/<direction>/ (new inputs are written there; git ignores it)
and the seed corpus fuzz/corpus-out/seeds/<direction>/, which it generates
with fuzz/make_corpus.py when missing. It adds -dict=fuzz/lgmp.dict,
-artifact_prefix=fuzz/ and -max_len=4096 unless given. Needs the ``fuzz`` extra (atheris).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["lgmp", "construct", "fuzz"]):
    from fuzz.decoder_target import DIRECTIONS, check_decoder  # noqa: E402

FUZZ = ROOT / "fuzz"


def libfuzzer_args(direction_name: str, args: list[str]) -> list[str]:
    """The user's libFuzzer arguments plus this driver's defaults (corpus, dictionary, artifacts)."""
    options = [a for a in args if a.startswith("-")]
    paths = [a for a in args if not a.startswith("-")]
    if not any(a.startswith("-dict=") for a in options):
        options.append(f"-dict={FUZZ / 'lgmp.dict'}")
    if not any(a.startswith("-artifact_prefix=") for a in options):
        options.append(f"-artifact_prefix={FUZZ}/")
    if not any(a.startswith("-max_len=") for a in options):
        options.append("-max_len=4096")  # a few packets of any size (the largest is 1552 bytes)
    if not paths:
        seeds = FUZZ / "corpus-out" / "seeds"
        if not (seeds / direction_name).is_dir():
            from fuzz import make_corpus

            make_corpus.write(seeds)
        out = FUZZ / "corpus-out" / direction_name
        out.mkdir(parents=True, exist_ok=True)
        paths = [str(out), str(seeds / direction_name)]  # libFuzzer adds new inputs to the first
    return options + paths


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in DIRECTIONS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(DIRECTIONS)}}} [libFuzzer options] [corpus dirs]")
    name = sys.argv[1]
    direction = DIRECTIONS[name]

    def test_one_input(data: bytes) -> None:
        check_decoder(direction, data)

    atheris.Setup([sys.argv[0], *libfuzzer_args(name, sys.argv[2:])], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
