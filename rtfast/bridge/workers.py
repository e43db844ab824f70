"""Every core: ``rtfast bridge --workers N``, a parent and N worker processes on one port.

Each worker is a whole bridge (its own event loop, its own calls; nothing is
shared between calls). They accept on one port: on Linux each binds its own
listening socket with ``SO_REUSEPORT`` and the kernel spreads connections among
them; elsewhere they share one listening socket made by the parent. The parent
runs no event loop and touches no call: it starts the workers, restarts one
that dies, and passes signals on (SIGTERM: every worker drains; a second
SIGTERM or a SIGINT: every worker ends at once).

What the group shares is a few numbers in memory mapped before the workers
fork (:class:`Group`): how many calls each worker holds (so ``--max-calls``
admits per group, under a lock taken once per new call, never per frame) and
each worker's metrics snapshot, published once a second, so whichever worker
answers a scrape reports the whole group. The parent keeps what a dead
worker had counted, so the group's counters never go backwards.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable

import orjson

from rtfast.bridge.ops import merge

__all__ = ["Group", "Supervisor", "available_cores"]

log = logging.getLogger("rtfast.bridge")

# One slot per worker, plus slot 0 for what workers that died had counted.
# A slot: seq (u64, odd while its snapshot is being written), the calls the
# worker holds (admitted: in progress or starting) and those in progress (two
# i64, always current), the snapshot's length (u32), then the snapshot as JSON.
_SLOT = 16384
_HEAD = struct.Struct("<QqqI")
_HELD, _LEN = 8, 24              # held, then active (two i64), at _HELD
_MAX_SNAPSHOT = _SLOT - _HEAD.size

# Gauges describe the present: a dead worker's are not kept, and these take
# the group's largest value rather than a sum.
_GAUGES = ("active_calls", "admitted_calls", "workers")
_GROUP_WIDE = ("max_calls", "draining")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Group:
    """The numbers a process group shares, in anonymous shared memory.

    Made by the parent before it forks; a worker calls :meth:`join` with its
    index (1..workers) and then writes only its own slot.
    """

    def __init__(self, workers: int, max_calls: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"a group needs at least one worker, not {workers}")
        self.workers = workers
        self.max_calls = max_calls
        self.index = 0                   # 0: the parent
        self._mem = mmap.mmap(-1, _SLOT * (workers + 1))
        # Fork-inherited; a process-shared semaphore held for a few microseconds per new call.
        self._lock = multiprocessing.Lock()
        self._lock_warned = False
        self._last: dict[int, dict] = {}     # the last snapshot read from each slot (used on a torn read)

    def join(self, index: int) -> None:
        if not 1 <= index <= self.workers:
            raise ValueError(f"worker index {index} is not in 1..{self.workers}")
        self.index = index

    # -- the calls each worker holds: admission ---------------------------------------------------------
    def _held(self, slot: int) -> int:
        return _HEAD.unpack_from(self._mem, slot * _SLOT)[1]

    def _own(self) -> int:
        """Where this worker's slot begins (the parent has none: slot 0 is what dead workers counted)."""
        if not self.index:
            raise RuntimeError("Group.join(index) first: only a worker writes a slot of its own")
        return self.index * _SLOT

    def _set_held(self, n: int) -> None:
        struct.pack_into("<q", self._mem, self._own() + _HELD, n)

    def held(self) -> int:
        """Calls held by the whole group now."""
        return sum(self._held(i) for i in range(1, self.workers + 1))

    def active(self) -> int:
        """Calls in progress in the whole group now."""
        return sum(_HEAD.unpack_from(self._mem, i * _SLOT)[2] for i in range(1, self.workers + 1))

    def admit(self, held_here: int) -> str | None:
        """Take a place for one more call in this worker (which holds ``held_here`` now):
        None when admitted (the worker's count is then ``held_here + 1``), else why not."""
        if self.max_calls is None:
            self._set_held(held_here + 1)
            return None
        # Check and take under the group's lock, so two workers cannot both take the last place.
        locked = self._lock.acquire(timeout=0.1)
        if not locked and not self._lock_warned:
            # Only a worker killed inside these few lines can leave it held: go on without it.
            self._lock_warned = True
            log.warning("the worker group's admission lock is stuck; admitting without it "
                        "(--max-calls may be passed by a call or two)")
        try:
            n = self.held() - self._held(self.index) + held_here
            if n >= self.max_calls:
                return f"at the call limit: {n} of {self.max_calls} calls"
            self._set_held(held_here + 1)           # admitted: None
        finally:
            if locked:
                self._lock.release()

    def release(self, held_here: int, active_here: int) -> None:
        """This worker now holds ``held_here`` calls, ``active_here`` of them in
        progress (a call started or ended, or an upgrade never became one)."""
        struct.pack_into("<qq", self._mem, self._own() + _HELD, held_here, active_here)

    # -- metrics snapshots ------------------------------------------------------------------------------
    def publish(self, snapshot: dict) -> None:
        """Write this worker's snapshot (a seqlock: readers retry a torn read)."""
        self._write(self._own() // _SLOT, orjson.dumps(snapshot))

    def _write(self, slot: int, data: bytes) -> None:
        if len(data) > _MAX_SNAPSHOT:
            data = data[:0]              # cannot happen with the metrics we keep; never write past the slot
        base = slot * _SLOT
        seq = _HEAD.unpack_from(self._mem, base)[0]
        struct.pack_into("<Q", self._mem, base, seq + 1)           # odd: being written
        struct.pack_into("<I", self._mem, base + _LEN, len(data))
        self._mem[base + _HEAD.size:base + _HEAD.size + len(data)] = data
        struct.pack_into("<Q", self._mem, base, seq + 2)

    def _read(self, slot: int) -> dict | None:
        base = slot * _SLOT
        for _ in range(100):
            seq, _held, _active, n = _HEAD.unpack_from(self._mem, base)
            if seq & 1:
                time.sleep(0)
                continue
            data = self._mem[base + _HEAD.size:base + _HEAD.size + min(n, _MAX_SNAPSHOT)]
            if _HEAD.unpack_from(self._mem, base)[0] == seq:
                snap = orjson.loads(data) if data else None
                self._last[slot] = snap
                return snap
        return self._last.get(slot)

    def snapshots(self, own: dict | None = None) -> list[dict]:
        """Every worker's last published snapshot (``own`` in place of this worker's:
        fresher), and what dead workers had counted."""
        out = []
        for slot in range(self.workers + 1):
            snap = own if (slot == self.index and own is not None) else self._read(slot)
            if snap is not None:
                out.append(snap)
        return out

    # -- the parent: a worker died --------------------------------------------------------------------
    def retire(self, index: int) -> None:
        """Fold a dead worker's counters into slot 0 and empty its slot (for the next one).
        Its calls in progress ended with it: counted as ``ended="worker_died"``."""
        snap = self._read(index) or {}
        # The calls it had in progress: its live count (the snapshot may be a second old).
        lost = _HEAD.unpack_from(self._mem, index * _SLOT)[2]
        if snap or lost:
            kept = self._read(0) or {}
            snap = {k: v for k, v in snap.items() if k not in _GAUGES and k not in _GROUP_WIDE}
            if lost:          # (a worker's own snapshot never counts worker_died: the parent does)
                snap["ended"] = {**snap.get("ended", {}), "worker_died": lost}
            self._write(0, orjson.dumps(merge([kept, snap]) if kept else snap))
        self._write(index, b"")
        struct.pack_into("<qq", self._mem, index * _SLOT + _HELD, 0, 0)


class Supervisor:
    """The parent of ``--workers N``: starts ``worker(index, group, listener, ready, port)``
    in N forked processes, restarts one that dies (waiting longer each time one
    dies young), passes SIGTERM and SIGINT on, and returns the exit status when
    the last worker has exited after a signal.

    ``ready`` is a ``multiprocessing.Event`` the worker sets once it accepts calls.
    """

    def __init__(self, workers: int, worker: Callable, *, host: str, port: int, group: Group,
                 start_timeout: float = 60.0) -> None:
        self.workers = workers
        self._worker = worker
        self.host, self.port = host, port
        self.group = group
        self.start_timeout = start_timeout
        self._ctx = multiprocessing.get_context("fork")
        self._procs: dict[int, multiprocessing.Process] = {}
        self._ready: dict[int, object] = {}
        self._started: dict[int, float] = {}
        self._deaths: dict[int, int] = {}          # young deaths in a row, per index: the restart backoff
        self._restart_at: dict[int, float] = {}
        self._signals: list[int] = []
        self.stopping: str | None = None           # None, "SIGTERM" (draining) or "now"
        self.reuse_port = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
        self.listener: socket.socket | None = None

    # -- the port ------------------------------------------------------------------------------------
    def bind(self) -> int:
        """Bind the port before any worker starts (a port in use fails here, once;
        port 0 becomes one real port for every worker). Returns the port."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:
                # Held bound but never listening: it keeps the port ours (no connection
                # is queued on it); each worker listens on a socket of its own.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
            if not self.reuse_port:
                sock.listen(1024)        # the workers share this one
                sock.set_inheritable(True)
        except OSError:
            sock.close()
            raise
        self.listener = sock
        self.port = sock.getsockname()[1]
        return self.port

    # -- running -------------------------------------------------------------------------------------
    def _start(self, index: int) -> None:
        ready = self._ctx.Event()
        shared = None if self.reuse_port else self.listener
        proc = self._ctx.Process(target=_worker_main, name=f"rtfast-bridge-worker-{index}",
                                 args=(self._worker, index, self.group, shared, ready, self.port, os.getpid()),
                                 daemon=False)
        proc.start()
        log.info("worker %d started (pid %d)", index, proc.pid)
        self._procs[index], self._ready[index], self._started[index] = proc, ready, time.monotonic()

    def start(self) -> bool:
        """Start every worker and wait until each accepts calls (False: one did not)."""
        for index in range(1, self.workers + 1):
            self._start(index)
        deadline = time.monotonic() + self.start_timeout
        for index, ready in self._ready.items():
            while not ready.wait(0.1):
                if not self._procs[index].is_alive() or time.monotonic() > deadline:
                    return False
        return True

    def _on_signal(self, signum: int, frame) -> None:
        self._signals.append(signum)

    def _forward(self, signum: int) -> None:
        for proc in self._procs.values():
            if proc.is_alive():
                try:
                    os.kill(proc.pid, signum)
                except ProcessLookupError:
                    pass

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGTERM and self.stopping is None:
                self.stopping = "SIGTERM"
                log.info("SIGTERM: draining %d workers; a second SIGTERM or SIGINT ends at once", len(self._procs))
                if self.listener is not None and self.reuse_port:
                    self.listener.close()          # the port is no longer held for new workers
                    self.listener = None
                self._forward(signal.SIGTERM)
            else:
                self.stopping = "now"
                self._forward(signum)

    def run(self) -> int:
        """Supervise until the workers exit after a signal; returns the exit status."""
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if not self.start():
                log.error("a worker did not start; stopping the others")
                self.stopping = "now"
                self._forward(signal.SIGINT)
                self._reap(wait=10.0)
                return 1
            print(f"rtfast bridge: {self.workers} workers listening on ws://{self._host_text()}:{self.port}/ "
                  f"({'SO_REUSEPORT' if self.reuse_port else 'one shared socket'})", flush=True)
            while self._procs or self._restart_at:
                self._handle_signals()
                sentinels = [p.sentinel for p in self._procs.values()]
                multiprocessing.connection.wait(sentinels, timeout=0.2)
                self._handle_signals()
                self._reap()
                self._restart_due()
            return 0
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            if self.listener is not None:
                self.listener.close()

    def _host_text(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _reap(self, wait: float = 0.0) -> None:
        end = time.monotonic() + wait
        while True:
            for index, proc in list(self._procs.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del self._procs[index]
                self.group.retire(index)
                if self.stopping is not None:
                    continue
                lived = time.monotonic() - self._started[index]
                # A worker that keeps dying young waits longer each time (up to 30 s) before the next.
                self._deaths[index] = self._deaths.get(index, 0) + 1 if lived < 10 else 0
                delay = min(30.0, 0.1 * 2 ** self._deaths[index]) if self._deaths[index] else 0.0
                log.error("worker %d (pid %d) died (exit %s) after %.1f s; restarting it%s", index, proc.pid,
                          proc.exitcode, lived, f" in {delay:.1f} s" if delay else "")
                self._restart_at[index] = time.monotonic() + delay
            if not self._procs or time.monotonic() >= end:
                return
            time.sleep(0.05)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for index, at in list(self._restart_at.items()):
            if self.stopping is not None:
                self._restart_at.clear()
                return
            if now >= at:
                del self._restart_at[index]
                self._start(index)


def _worker_main(worker: Callable, index: int, group: Group, listener, ready, port: int, parent: int) -> None:
    """A worker process: default signal handling until its event loop installs its own."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _drain_with_parent(parent)
    group.join(index)
    code = worker(index, group, listener, ready, port)
    sys.exit(code or 0)


def _drain_with_parent(parent: int) -> None:
    """On Linux, a worker gets SIGTERM (and drains) when its parent dies, killed
    without a chance to pass signals on; orphans would otherwise serve on unsupervised."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)          # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:                          # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
