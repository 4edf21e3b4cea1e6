"""The ``lgmp`` command as a newcomer meets it: one-line errors with the right exit status,
options where people put them, Ctrl-C, ``lgmp bot``'s progress, the results file's home.

The Ctrl-C tests run the real commands as subprocesses and send them SIGINT.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lgmp import __version__
from lgmp.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # seconds a subprocess gets to say something; a whole game with 0-delay bots takes ~1 s


# =============================================================================== in-process: the parser


@pytest.mark.parametrize("argv, complaint", [
    (["serve", "--port", "-1"], "--port: -1 is out of range"),
    (["serve", "--port", "99999"], "--port: 99999 is out of range"),
    (["serve", "--db", "x.sqlite3", "--no-db"], "not allowed with argument --db"),
    (["serve", "--packet-rate", "-5"], "out of range"),
    (["demo", "--delay", "-1"], "--delay: -1 is out of range"),
    (["demo", "--bots", "0"], "--bots: 0 is out of range: give from 1 to 6"),
    (["demo", "--bots", "7"], "--bots: 7 is out of range"),
    (["bot", "ABCDE"], "'ABCDE' is not a room code"),
    (["bot", "AB1D"], "is not a room code"),
    (["bot", "ABCD", "--count", "0"], "--count: 0 is out of range"),
    (["bot", "ABCD", "--count", "-1"], "--count: -1 is out of range"),
    (["bot", "ABCD", "--port", "0"], "--port: 0 is out of range"),
    (["host", "--start-when", "0"], "--start-when: 0 is out of range"),
    (["host", "--games", "0"], "--games: 0 is out of range"),
    (["play", "QZ"], "is not a room code"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, complaint, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and complaint in err and err.startswith(f"lgmp {argv[0]}: "), err


def test_global_options_go_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["serve", "--log-level", "debug"]).log_level == "debug"
    assert parser.parse_args(["--log-level", "debug", "serve"]).log_level == "debug"
    assert parser.parse_args(["serve"]).log_level is None


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out == f"lgmp {__version__} (LGMP v1.0)\n"


def test_codes_are_taken_in_any_case():
    assert build_parser().parse_args(["bot", "qzkw"]).code == "QZKW"


# =============================================================================== subprocesses


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


def lgmp(*args: str, cwd: Path = ROOT, env: dict | None = None, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen([sys.executable, "-m", "lgmp.cli", *args], cwd=cwd, env=environment, stdin=stdin,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _started.append(process)
    return process


def read_until(process: subprocess.Popen, pattern: str, timeout: float = WAIT) -> re.Match:
    """Read ``process``'s stdout line by line until one matches ``pattern``."""
    seen = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
    process.kill()
    raise AssertionError(f"no line matching {pattern!r}; stdout: {seen!r}; stderr: {process.stderr.read()!r}")


def interrupt(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


@pytest.fixture
def server(tmp_path):
    """``lgmp serve`` on a free port, results in a data folder of the test's own; yields the port."""
    process = lgmp("serve", "--no-http", "--port", "0", "--no-db", env={"XDG_DATA_HOME": str(tmp_path / "data")})
    return int(read_until(process, r"LGMP server on 127\.0\.0\.1:(\d+)").group(1))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_clean_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


def test_serve_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = finish(lgmp("serve", "--no-http", "--port", str(port), "--no-db"))
    assert status == 1 and one_clean_line(err), err
    assert err == f"lgmp serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_serve_on_an_unknown_host_says_so_in_one_line():
    status, out, err = finish(lgmp("serve", "--no-http", "--host", "no-such-host.invalid", "--port", "0", "--no-db"))
    assert status == 1 and one_clean_line(err) and "cannot listen on no-such-host.invalid:0" in err, err


@pytest.mark.parametrize("command", [["bot", "ABCD"], ["host"], ["play", "ABCD"]])
def test_no_server_is_one_line(command):
    port = closed_port()
    status, out, err = finish(lgmp(*command, "--port", str(port)))
    assert status == 1 and one_clean_line(err), err
    assert f"cannot connect to 127.0.0.1:{port}: Connection refused. Is `lgmp serve` running there?" in err


def test_a_bot_for_a_room_that_does_not_exist_says_so_plainly(server):
    status, out, err = finish(lgmp("bot", "zzzz", "--port", str(server), "--count", "2"))
    assert status == 1 and one_clean_line(err), err
    assert err == "lgmp bot: There is no room ZZZZ. Check the four-letter code on the host's screen.\n"


def test_ctrl_c_stops_serve_cleanly(tmp_path):
    process = lgmp("serve", "--no-http", "--port", "0", "--no-db")
    read_until(process, r"LGMP server on")
    status, out, err = interrupt(process)
    assert status == 0 and out == "LGMP server stopped.\n" and "Traceback" not in err


def test_ctrl_c_stops_host_and_bot_with_one_line_and_130(server):
    host = lgmp("host", "--port", str(server))
    code = read_until(host, r"Room ([A-Z]{4}) is open\. Join with: lgmp play \1 --port (\d+)").group(1)
    bots = lgmp("bot", code, "--port", str(server), "--count", "2")
    read_until(bots, r"Bot2 joined room")
    status, out, err = interrupt(bots)
    assert status == 130 and err == "lgmp bot: stopped; the bots left the room.\n", err
    status, out, err = interrupt(host)
    assert status == 130 and err == "lgmp host: stopped; the room is closed.\n", err


def test_ctrl_c_in_play_says_goodbye_and_exits_130(server):
    host = lgmp("host", "--port", str(server))
    code = read_until(host, r"Room ([A-Z]{4}) is open").group(1)
    player = lgmp("play", code, "--port", str(server), stdin=subprocess.PIPE)
    read_until(player, r"Joined room")
    status, out, err = interrupt(player)
    assert status == 130 and err == "" and out.splitlines()[-1] == "You left the game.", out + err


def test_ctrl_c_stops_demo_with_one_line_and_130():
    demo = lgmp("demo", "--delay", "0.5")
    read_until(demo, r"Game 1 starts")
    status, out, err = interrupt(demo)
    assert status == 130 and err == "lgmp demo: stopped.\n", err


def test_bots_report_every_game_and_results_are_found_from_anywhere(tmp_path):
    """Two games hosted and played by subprocesses; the results file is where serve said, and
    ``lgmp results`` run from another folder, with no option, finds both games."""
    data = tmp_path / "data"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = {"XDG_DATA_HOME": str(data)}
    # Bots with no delay send faster than the default flood limit allows a person.
    serve = lgmp("serve", "--no-http", "--port", "0", "--packet-rate", "1000", "--packet-burst", "1000", cwd=tmp_path / "a", env=env)
    line = read_until(serve, r"LGMP server on 127\.0\.0\.1:(\d+), results in (\S+)\. Ctrl-C stops it\.")
    port, results_file = line.group(1), line.group(2)
    assert results_file == str(data / "lgmp" / "lgmp-results.sqlite3")
    host = lgmp("host", "--port", port, "--start-when", "2", "--games", "2", env=env)
    code = read_until(host, r"Room ([A-Z]{4}) is open").group(1)
    status, out, err = finish(lgmp("bot", code, "--port", port, "--count", "2", "--games", "2",
                                   "--delay", "0", "--seed", "3", env=env))
    assert status == 0, out + err
    assert "Bot1 joined room" in out and "Game 1 started" in out and "Game 2 started" in out
    assert re.search(r"Game 1 over: 1st Bot\d \([^)]*, \$[\d,]+\), 2nd Bot\d", out)
    assert re.search(r"Game 2 over: 1st Bot\d", out)
    assert re.search(r"Bot\d finished 1st\.", out)
    assert out.rstrip().endswith(f"Done: 2 bots played 2 games in room {code}.")
    assert finish(host)[0] == 0
    assert interrupt(serve)[0] == 0
    status, out, err = finish(lgmp("results", cwd=tmp_path / "b", env=env))
    assert status == 0 and out.count(code) == 2, out + err
    assert not list((tmp_path / "a").iterdir())  # nothing left in the folder serve started from


def test_results_before_any_game_is_not_an_error(tmp_path):
    status, out, err = finish(lgmp("results", env={"XDG_DATA_HOME": str(tmp_path)}))
    assert status == 0 and out.startswith("No games recorded yet:") and str(tmp_path) in out


def test_a_results_file_that_cannot_be_opened_names_the_file_and_the_cause(tmp_path):
    target = tmp_path / "missing" / "results.sqlite3"
    status, out, err = finish(lgmp("serve", "--no-http", "--port", "0", "--db", str(target)))
    assert status == 1 and one_clean_line(err), err
    assert str(target) in err and f"the folder {target.parent} does not exist" in err
