"""Smoke test of the benchmark (``python -m tools.bench --quick``): it runs and prints figures.

Nothing here asserts how fast anything is -- the machine may be busy; the figures
are for people to read. It checks that every phase ran against a real server
process, that the table has a row per phase with numbers in it, and that the
comparison line was printed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_bench_runs_and_prints_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--no-plot", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("----")) + 1
    rows = lines[start:lines.index("", start)]  # the table: from under its header to the blank line
    assert len(rows) == 5, out
    assert sum(" lgmp " in row for row in rows) == 3, out
    assert sum(" baseline " in row for row in rows) == 1 and sum(" baseline-direct " in row for row in rows) == 1, out
    for row in rows:
        assert len(re.findall(r"\d[\d,]*\.?\d*", row)) >= 8, row  # conns, packets/s, latency, CPU...
    assert re.search(r"lgmp / baseline packets per CPU-second = \d+\.\d\d", out), out
    assert re.search(r"idle: \d+ connections .* \d+\.\d\d KiB per connection", out), out

    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert set(results) == {"storm-lgmp", "storm-baseline", "storm-baseline-direct", "paced-lgmp", "idle-lgmp"}
    for name, r in results.items():
        assert r["packets_in"] > 0 and r["packets_out"] > 0, name
        assert r["latency"]["count"] > 0, name
        assert r["server_cpu_s"] > 0 and r["server_peak_rss_kb"] > 0, name
        assert r["closed_by_server"] == 0 and not r["errors"], (name, r["errors"])
    assert results["idle-lgmp"]["idle"]["connections"] == 200


@pytest.mark.slow
def test_quick_bench_of_observation_runs_with_http_on_and_spectators_watching(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--only", "storm-http", "--no-plot", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())["results"]["storm-http"]
    assert result["packets_in"] > 0 and not result["errors"], result
    assert result["spectators"]["streams"] == 100 and result["spectators"]["rooms"] == 4, result["spectators"]
    assert re.search(r"observation: turn storm with HTTP on and 100 spectators on 4 rooms", done.stdout), done.stdout


def test_latency_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from tools.loadgen import plot_latency

    times = array("d", [i / 100 for i in range(300)])
    values = array("d", [0.001 + (i % 17) / 10_000 for i in range(300)])
    path = plot_latency(str(tmp_path / "latency.png"), times, values, title="test")
    assert path is not None
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_repeats_are_summarized_by_median_with_problems_summed():
    from tools.bench import paired_ratios, summarize

    runs = [
        {"round": r, "server": "lgmp", "packets_per_cpu_s": ppc, "latency": {"p99_ms": p99}, "closed_by_server": closed,
         "errors": errors}
        for r, ppc, p99, closed, errors in [(0, 100.0, 5.0, 0, {}), (1, 300.0, 1.0, 2, {"x": 1}), (2, 200.0, 9.0, 0, {"x": 2})]
    ]
    summary = summarize(runs)
    assert summary["packets_per_cpu_s"] == 200.0 and summary["latency"]["p99_ms"] == 5.0
    assert summary["closed_by_server"] == 2 and summary["errors"] == {"x": 3}
    assert summary["repeats"] == 3 and summary["packets_per_cpu_s_runs"] == [100.0, 300.0, 200.0]
    baseline = [{"round": 2, "packets_per_cpu_s": 400.0}, {"round": 0, "packets_per_cpu_s": 200.0}]
    assert paired_ratios(runs, baseline) == [0.5, 0.5]  # round 1 has no baseline run: left out


def test_profile_samples_are_charged_to_the_part_they_ran_in():
    from tools.bench_profile import group_of

    shell = "LGMPServer._read (lgmp/server/shell.py:229)"
    assert group_of([shell, "write (libc.so.6)"]) == "kernel: system calls"
    assert group_of([shell, "Hub.receive (lgmp/rooms/hub.py:115)", "__init__ (<string>:3)"]) == "room: hub"
    assert group_of([shell, "encode (lgmp/wire/codec.py:431)", "FormatField._build (construct/core.py:1)"]) == "codec"
    assert group_of([shell, "EpollIOManager.wait_readable (trio/_core/_io_epoll.py:1)"]) == "trio"
    assert group_of(["gc_collect_main (libpython3.11.so.1.0)"]) == "garbage collector"
