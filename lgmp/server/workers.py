"""``lgmp serve --workers N``: N server processes on one port, one parent watching them.

One process uses one core. Rooms cannot be split across processes (their state
and timers are in memory), so each worker owns whole rooms: a fixed share of the
26 code letters (``lgmp.rooms.shards``), from which it draws its new codes. The
kernel spreads new connections over the workers (``SO_REUSEPORT``); a worker that
accepts a JOIN for a sibling's letter relays the connection to that sibling's
relay listener (``lgmp.server.relay``).

The parent
    binds every socket before starting any worker: one public listener per worker
    on the same port (``SO_REUSEPORT``; port 0 picks one for all) and one relay
    listener per worker on the loopback. It keeps them all open, so a worker that
    dies and is started again gets the very same sockets: connections that arrive
    meanwhile wait in its backlog rather than being refused, and its siblings'
    routing tables stay true. Workers are forked (the parent runs no event loop and
    no thread), each in its own process group so a terminal's Ctrl-C reaches the
    parent only. The parent prints where everything is, restarts a worker that
    exits on its own (at once, then backing off if it keeps dying young), and on
    SIGTERM or SIGINT forwards SIGTERM to every worker and waits for their graceful
    shutdown: RSET to every member, results written, exit 0. A second signal is
    ignored; a third kills the workers.

A worker
    is an ``LGMPServer`` with the plan, its two sockets and its own connection to
    the one results file (SQLite in WAL mode: one writer at a time across processes,
    each game one transaction, a FINL still waiting for its own commit). Its log
    lines start with its name (``[w1]``). If the parent disappears, it shuts down as
    on SIGTERM.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass

import trio

from ..limits import Limits
from ..results.store import shown
from ..rooms.shards import MAX_OWNERS, ShardPlan, worker_name

log = logging.getLogger("lgmp.server.workers")

# A worker that dies within this long of starting is "dying young": the second
# such death in a row and later ones are restarted after a growing pause, so a
# worker that cannot start does not spin the machine.
YOUNG_DEATH = 10.0
RESTART_PAUSE_MAX = 30.0  # seconds, the longest pause between restarts
# How long the parent waits for the workers' graceful shutdown before killing
# them, beyond their own bound (shutdown_grace): a FINL waits up to STORE_WAIT
# (10 s) for its commit, and the final flush up to FLUSH_TIMEOUT (2 s).
STOP_MARGIN = 20.0
# A worker looks this often whether its parent is still there.
PARENT_CHECK = 1.0
BACKLOG = 4096  # per listener, as a lone server's

_WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    host: str
    port: int
    count: int
    limits: Limits
    seed: int | None = None
    server_spins: bool = False
    db: str | None = None  # None: keep no results
    relay_host: str = "127.0.0.1"  # where the relay listeners listen: loopback only
    relay_port: int = 0  # worker i's relay listener port is relay_port + i (0: any free port)
    cluster: object | None = None  # a lgmp.cluster.member.ClusterSettings: letters leased over Redis


def worker_count(text: str) -> int:
    """``--workers``: a number 1-26, or ``auto`` (one per usable core, at most 26)."""
    if text == "auto":
        return max(1, min(MAX_OWNERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
    count = int(text)
    if not 1 <= count <= MAX_OWNERS:
        raise ValueError(f"--workers must be 1-{MAX_OWNERS} (each worker owns at least one of the 26 code letters) or auto")
    return count


@dataclass(slots=True)
class _Worker:
    index: int
    public: socket.socket
    relay: socket.socket
    pid: int | None = None
    started: float = 0.0
    young_deaths: int = 0
    restart_at: float | None = None
    starts: int = 0  # times started so far

    def seed(self, seed: int | None) -> int | None:
        """This incarnation's seed: the run's seed per worker, and a new one after each
        restart -- a restarted worker must not hand out its dead rooms' codes again,
        or a player of a dead room could land in a stranger's new one."""
        return None if seed is None else seed + self.index + MAX_OWNERS * (self.starts - 1)

    @property
    def name(self) -> str:
        return worker_name(self.index)


# --- the parent ---------------------------------------------------------------------------


def run_workers(settings: WorkerSettings, *, out=None) -> int:
    """Run the workers until SIGTERM/SIGINT; the exit status (0: every worker stopped cleanly)."""
    out = out or sys.stdout
    if not hasattr(socket, "SO_REUSEPORT"):
        print("lgmp serve: --workers needs SO_REUSEPORT (Linux, the BSDs)", file=sys.stderr)
        return 1
    if settings.db is not None and not _prepare_results(settings.db):
        return 1
    publics = _public_listeners(settings.host, settings.port, settings.count)
    port = publics[0].getsockname()[1]
    relays = [_listener((settings.relay_host, settings.relay_port + i if settings.relay_port else 0))
              for i in range(settings.count)]
    addresses = [s.getsockname()[:2] for s in relays]
    workers = [_Worker(i, publics[i], relays[i]) for i in range(settings.count)]
    plans = [ShardPlan.for_workers(i, addresses) for i in range(settings.count)]

    signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    name_logs("main")
    print(f"LGMP server on {settings.host}:{port}, {settings.count} workers"
          + ("" if settings.db is None else f", results in {shown(settings.db)}"), file=out, flush=True)
    for worker in workers:
        _start(worker, settings, plans, workers, out)

    stopping_since: float | None = None
    signals = 0
    status = 0
    while True:
        now = time.monotonic()
        due = [w.restart_at for w in workers if w.restart_at is not None]
        wait = max(0.01, min([0.5] + [at - now for at in due]))
        info = signal.sigtimedwait(_WATCHED, wait)
        if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
            signals += 1
            name = signal.Signals(info.si_signo).name
            if signals == 1:
                log.info("received %s: stopping %d workers", name, len(workers))
                stopping_since = time.monotonic()
                for worker in workers:
                    worker.restart_at = None
                    _signal(worker, signal.SIGTERM)
            elif signals == 2:
                log.warning("received %s again: still waiting for the workers' graceful shutdown (once more kills them)", name)
            else:
                log.warning("received %s a third time: killing the workers", name)
                for worker in workers:
                    _signal(worker, signal.SIGKILL)
        for worker, code in _reap(workers):
            how = _describe_exit(code)
            if stopping_since is not None:
                log.info("worker %s stopped: %s", worker.name, how)
                status = status or (0 if code == 0 else 1)
                continue
            lived = time.monotonic() - worker.started
            worker.young_deaths = worker.young_deaths + 1 if lived < YOUNG_DEATH else 0
            pause = 0.0 if worker.young_deaths <= 1 else min(RESTART_PAUSE_MAX, 2.0 ** (worker.young_deaths - 2))
            log.error("worker %s %s after %.1f s; restarting it%s", worker.name, how, lived,
                      f" in {pause:g} s" if pause else "")
            worker.restart_at = time.monotonic() + pause
        if stopping_since is None:
            for worker in workers:
                if worker.restart_at is not None and worker.restart_at <= time.monotonic():
                    worker.restart_at = None
                    _start(worker, settings, plans, workers, out, restarted=True)
        elif all(w.pid is None for w in workers):
            break
        elif time.monotonic() - stopping_since > settings.limits.shutdown_grace + STOP_MARGIN:
            log.error("workers still running %g s after SIGTERM: killing them", settings.limits.shutdown_grace + STOP_MARGIN)
            for worker in workers:
                _signal(worker, signal.SIGKILL)
            status = 1
            stopping_since = time.monotonic()  # give the kills a moment to be reaped
    for s in publics + relays:
        s.close()
    return status


def _prepare_results(path: str) -> bool:
    """Create or upgrade the results file once, before any worker opens it, and import
    the games a previous run journalled (lgmp/results/journal.py)."""
    from ..results.journal import durable_results
    from ..results.store import ResultsStore, StoreError

    try:
        store = ResultsStore.open(path)
        durable_results(store, path)
        store.close()
    except StoreError as exc:
        print(f"lgmp serve: {exc}", file=sys.stderr)
        return False
    return True


def _public_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listeners on one address and port, the kernel spreading connections
    over them (SO_REUSEPORT); port 0 picks a free port for all of them."""
    info = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    first = _listener(info[4], family=info[0], reuseport=True)
    address = first.getsockname()
    return [first] + [_listener(address, family=info[0], reuseport=True) for _ in range(count - 1)]


def _listener(address, *, family: int = socket.AF_INET, reuseport: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _start(worker: _Worker, settings: WorkerSettings, plans: list[ShardPlan], workers: list[_Worker], out,
           *, restarted: bool = False) -> None:
    parent = os.getpid()
    worker.starts += 1
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker
        code = 1
        try:
            others = [s for w in workers if w is not worker for s in (w.public, w.relay)]
            code = _worker_main(worker, settings, plans[worker.index], others, parent)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    worker.pid, worker.started = pid, time.monotonic()
    relay = worker.relay.getsockname()
    letters = "leased from the cluster" if settings.cluster is not None else plans[worker.index].letters
    print(f"worker {worker.name}: pid {pid}, relay listener {relay[0]}:{relay[1]}, "
          f"letters {letters}" + (" (restarted)" if restarted else ""), file=out, flush=True)


def _signal(worker: _Worker, signum: int) -> None:
    if worker.pid is not None:
        try:
            os.kill(worker.pid, signum)
        except ProcessLookupError:
            pass


def _reap(workers: list[_Worker]) -> list[tuple[_Worker, int]]:
    """Workers that exited since the last look, with their exit codes (negative: a signal)."""
    reaped = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        for worker in workers:
            if worker.pid == pid:
                worker.pid = None
                reaped.append((worker, os.waitstatus_to_exitcode(status)))
    return reaped


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


# --- a worker -------------------------------------------------------------------------------


class _NameWorker(logging.Filter):
    """Log lines start with the worker's name: ``[w1] [ABCD host] room created``."""

    def __init__(self, name: str):
        super().__init__()
        self.prefix = f"[{name}] "

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("[-] "):  # no room to name: the worker is name enough
            message = message[4:]
        record.msg, record.args = self.prefix + message, ()
        return True


def name_logs(name: str) -> None:
    """From now on this process's log lines start with ``[name]`` (instead of a name
    given before: a worker forked from its parent drops the parent's)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _NameWorker)]:
            handler.removeFilter(old)
        handler.addFilter(_NameWorker(name))


def _worker_main(worker: _Worker, settings: WorkerSettings, plan: ShardPlan, others: list[socket.socket], parent: int) -> int:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the parent, which tells us
    for sock in others:
        sock.close()
    name_logs(plan.me)
    from .process import tune_collector
    from .shell import LGMPServer

    store, on_game_finished = _open_results(settings.db)
    server = LGMPServer(
        limits=settings.limits,
        seed=worker.seed(settings.seed),
        server_spins=settings.server_spins,
        on_game_finished=on_game_finished,
        shard=plan,
    )
    tune_collector()
    member = None
    if settings.cluster is not None:  # the letters are leased over Redis instead of dealt
        from ..cluster.member import ClusterMember

        member = ClusterMember(server, settings.cluster, worker=worker.index, workers=settings.count)
    try:
        trio.run(_serve_worker, server, settings, worker.public, worker.relay, parent, member)
    finally:
        if store is not None:
            store.close()
    return 0


def _open_results(path: str | None):
    if path is None:
        return None, None
    from ..results.store import ResultsStore

    from ..results.journal import DurableRecorder, journal_path_for

    store = ResultsStore.open(path)
    # FINL only once a game is durable: the database, or else the journal (shared by the
    # workers, imported by the parent at the next start).
    return store, DurableRecorder(store, journal_path_for(path))


async def _serve_worker(server, settings: WorkerSettings, public: socket.socket, relay: socket.socket, parent: int,
                        member=None) -> None:
    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(public))]
    relay_listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(relay))]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        # The receiver stays open until the shutdown is over: a repeated signal is
        # then logged and ignored instead of killing the process halfway.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(functools.partial(server.serve, settings.host, settings.port, listeners=listeners,
                                                  relay_listeners=relay_listeners))
            nursery.start_soon(_on_signals, signals, stop)
            nursery.start_soon(_watch_parent, parent, stop)
            if member is not None:
                nursery.start_soon(member.run)
            await stop.wait()
            await server.shutdown()
            if member is not None:
                await member.leave()
        nursery.cancel_scope.cancel()


async def _on_signals(signals, stop: trio.Event) -> None:
    async for signum in signals:
        if stop.is_set():
            log.warning("received %s during the shutdown: ignored", signal.Signals(signum).name)
        else:
            log.info("received %s", signal.Signals(signum).name)
            stop.set()


async def _watch_parent(parent: int, stop: trio.Event) -> None:
    while os.getppid() == parent:
        await trio.sleep(PARENT_CHECK)
    log.error("the parent process is gone: shutting down")
    stop.set()
