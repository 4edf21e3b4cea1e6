"""Run a server module with a profiler that the load generator switches on and off.

    python -m tools.bench_profile --out bench-out/profile-storm lgmp.cli serve --no-db --port 0 ...

The module runs as with ``python -m``. ``SIGUSR1`` starts the profiler and counts
garbage collections; ``SIGUSR2`` stops it and writes ``OUT-flat.txt`` (functions by
self time and by total time), ``OUT-groups.json`` (py-spy: the samples by part of
the server, see ``GROUPS``), ``OUT-gc.txt`` (collections per generation and the
time they took) and, with pyinstrument, ``OUT.txt`` (the call tree).
``tools.loadgen --signal-server`` sends the two signals when its measurement
window opens and closes, so the profile covers exactly the figures the benchmark
reports -- not start-up or room set-up.

Profilers (``--profiler``, default ``auto``):

* ``py-spy`` (``pip install py-spy``; used by ``auto`` when installed): a sampling
  profiler in another process, so the server runs at full speed; ``--native``
  shows C frames too, so time in ``send``/``recv`` and in the garbage collector
  (``gc_collect_main``) is shown as such rather than charged to the Python line
  that made the call.
* ``pyinstrument`` (the ``bench`` extra): in-process, with a per-call cost that
  slows the server several times over and charges calls more than loops; use its
  proportions, not its speed.
* ``none``: no profiler, only the collector's figures (and its pauses over 5 ms,
  with their time in the window, to hold against the latency plot).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time


def summarize_collapsed(raw_path: str, out_path: str, *, top: int = 40) -> None:
    """A flat profile (self and total share per function) from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            samples += n
            # "func (file.py:123)" -> "func (file.py)": one entry per function
            frames = [re.sub(r":\d+\)$", ")", re.sub(r"\(/.*?site-packages/", "(", frame)) for frame in stack.split(";")]
            own[frames[-1]] += n
            for frame in set(frames):
                total[frame] += n
    with open(out_path, "w") as f:
        f.write(f"{samples} samples (py-spy)\n\nself time\n")
        for frame, n in own.most_common(top):
            f.write(f"{100 * n / max(samples, 1):5.1f}%  {frame}\n")
        f.write("\ntotal time (self + callees)\n")
        for frame, n in total.most_common(top):
            f.write(f"{100 * n / max(samples, 1):5.1f}%  {frame}\n")


#: The parts of a server a sample is charged to: the innermost frame of the stack
#: that matches, looking from the leaf outwards (a dataclass ``__init__`` or a
#: builtin is charged to the code that called it).
SYSCALLS = frozenset({"write", "read", "recv", "recvfrom", "send", "sendto", "epoll_wait", "epoll_ctl",
                      "accept4", "close", "getsockopt", "setsockopt"})
GROUPS: tuple[tuple[str, str], ...] = (
    ("lgmp/wire/", "codec"),
    ("construct/", "codec"),
    ("lgmp/game/", "engine"),
    ("lgmp/rooms/session.py", "room: session"),
    ("lgmp/rooms/room.py", "room: lobby and table"),
    ("lgmp/rooms/hub.py", "room: hub"),
    ("lgmp/rooms/", "room: events and names"),
    ("lgmp/server/connection.py", "shell: connection"),
    ("lgmp/server/", "shell"),
    ("tools/baseline_server.py", "baseline handler"),
    ("trio/", "trio"),
    ("outcome/", "trio"),
)
#: Groups that are the server's own Python (the rest: the kernel, the garbage
#: collector, trio, and the interpreter starting up).
OWN_PYTHON = frozenset({"codec", "engine", "room: session", "room: lobby and table", "room: hub",
                        "room: events and names", "shell: connection", "shell", "baseline handler"})


def group_of(frames: list[str]) -> str:
    """Which part of the server a py-spy stack (outermost frame first) is charged to."""
    for frame in reversed(frames):
        name, _, where = frame.partition(" (")
        if where.startswith("libc") and name in SYSCALLS:
            return "kernel: system calls"
        if name.startswith("gc_collect"):
            return "garbage collector"
        for pattern, group in GROUPS:
            if pattern in where:
                return group
    return "other"


def summarize_groups(raw_path: str, out_path: str) -> dict[str, float]:
    """Each group's share of the samples in py-spy's collapsed stacks; also written to ``out_path``."""
    counts: collections.Counter[str] = collections.Counter()
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit():
                counts[group_of(stack.split(";"))] += int(count)
    samples = sum(counts.values()) or 1
    shares = {group: n / samples for group, n in counts.most_common()}
    with open(out_path, "w") as f:
        json.dump({"samples": samples, "shares": shares}, f, indent=1)
    return shares


def find_py_spy() -> str | None:
    """py-spy on PATH or beside this Python (a venv's bin/)."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return shutil.which("py-spy") or (beside if os.access(beside, os.X_OK) else None)


class WindowProfiler:
    def __init__(self, out: str, profiler: str, interval: float, native: bool):
        self.out = out
        self.kind = profiler
        self.interval = interval
        self.native = native
        self.running = False
        self.profiler = None  # pyinstrument
        self.spy: subprocess.Popen | None = None
        self.gc = {g: [0, 0.0, 0] for g in range(3)}
        self.long_pauses: list[tuple[float, int, float]] = []
        self._gc_started = 0.0
        self.started = 0.0

    def _gc_callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            took = time.perf_counter() - self._gc_started
            entry = self.gc[info["generation"]]
            entry[0] += 1
            entry[1] += took
            entry[2] += info["collected"]
            if took > 0.005:  # a pause worth seeing next to the latency plot
                self.long_pauses.append((self._gc_started - self.started, info["generation"], took))

    def start(self, *_: object) -> None:
        if self.running:
            return
        self.running = True
        self.gc = {g: [0, 0.0, 0] for g in range(3)}
        self.long_pauses = []
        self.started = time.perf_counter()
        gc.callbacks.append(self._gc_callback)
        if self.kind == "py-spy":
            argv = [find_py_spy() or "py-spy", "record", "--pid", str(os.getpid()), "--rate",
                    str(round(1 / self.interval)), "--format", "raw", "--output", self.out + ".raw"]
            if self.native:
                argv.append("--native")
            self.spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.out + "-py-spy.log", "w"))
        elif self.kind == "pyinstrument":
            from pyinstrument import Profiler

            self.profiler = Profiler(interval=self.interval, async_mode="disabled")
            self.profiler.start()

    def stop(self, *_: object) -> None:
        if not self.running:
            return
        self.running = False
        elapsed = time.perf_counter() - self.started
        gc.callbacks.remove(self._gc_callback)
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                self.spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.spy.kill()
            self.spy = None
            if os.path.exists(self.out + ".raw"):
                summarize_collapsed(self.out + ".raw", self.out + "-flat.txt")
                summarize_groups(self.out + ".raw", self.out + "-groups.json")
        elif self.profiler is not None:
            self.profiler.stop()
            with open(self.out + ".txt", "w") as f:
                f.write(self.profiler.output_text(unicode=False, color=False))
            with open(self.out + "-flat.txt", "w") as f:
                f.write("pyinstrument: self time\n")
                f.write(self.profiler.output_text(unicode=False, color=False, show_all=True, flat=True,
                                                  flat_time="self", time="percent_of_total"))
            self.profiler = None
        with open(self.out + "-gc.txt", "w") as f:
            f.write(f"window {elapsed:.2f} s ({self.kind}); tracked objects now {len(gc.get_objects()):,}\n")
            for generation, (count, seconds, collected) in self.gc.items():
                f.write(f"generation {generation}: {count} collections, {seconds:.3f} s "
                        f"({seconds / elapsed:.1%} of the window), {collected:,} objects collected\n")
            for at, generation, took in self.long_pauses[:50]:
                f.write(f"  pause at {at:6.2f} s into the window: generation {generation}, {took * 1e3:.1f} ms\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="path prefix of the reports")
    parser.add_argument("--profiler", choices=["auto", "py-spy", "pyinstrument", "none"], default="auto",
                        help="none: only the garbage collector's figures")
    parser.add_argument("--interval", type=float, default=0.004, help="sampling interval, s (default 0.004)")
    parser.add_argument("--no-native", dest="native", action="store_false", help="py-spy: Python frames only")
    parser.add_argument("module", help="module to run, as with python -m")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    kind = args.profiler
    if kind == "auto":
        kind = "py-spy" if find_py_spy() else "pyinstrument"
    window = WindowProfiler(args.out, kind, args.interval, args.native)
    signal.signal(signal.SIGUSR1, window.start)
    signal.signal(signal.SIGUSR2, window.stop)
    sys.argv = [args.module, *args.args]
    runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
