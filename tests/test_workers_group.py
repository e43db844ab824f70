"""rtfast.bridge.workers.Group, sans sockets: the numbers a process group shares
(admission across workers, published snapshots, a dead worker's counters)."""

import multiprocessing
import os
import time

import orjson

import pytest

from rtfast.bridge.ops import Collector, Ops, merge
from rtfast.bridge import workers
from rtfast.bridge.workers import Group, available_cores


# -- the shared numbers ----------------------------------------------------------------------------

def as_worker(group: Group, index: int) -> Group:
    group.join(index)
    return group


def test_admission_counts_every_worker_and_releases_places():
    g = Group(2, max_calls=3)
    assert as_worker(g, 1).admit(0) is None and g.admit(1) is None          # worker 1 holds 2
    assert as_worker(g, 2).admit(0) is None                                 # the group holds 3
    assert g.held() == 3
    assert g.admit(1) == "at the call limit: 3 of 3 calls"
    assert as_worker(g, 1).admit(2) == "at the call limit: 3 of 3 calls"
    g.release(1, 1)                                                         # a call of worker 1 ended
    assert (g.held(), g.active()) == (2, 1)
    as_worker(g, 2).release(1, 1)                                           # worker 2's call started
    assert (g.held(), g.active()) == (2, 2)
    assert g.admit(1) is None and g.held() == 3
    # Without a limit a place is always taken, and still counted.
    free = as_worker(Group(2), 2)
    assert [free.admit(n) for n in range(5)] == [None] * 5 and free.held() == 5


def test_a_group_wants_workers_and_indices_in_range():
    with pytest.raises(ValueError, match="at least one worker"):
        Group(0)
    with pytest.raises(ValueError, match=r"worker index 3 is not in 1..2"):
        Group(2).join(3)
    with pytest.raises(ValueError, match=r"worker index 0 is not in 1..2"):
        Group(2).join(0)


def _admit_and_release(group: Group, index: int, seconds: float, out, go) -> None:
    """Take and give back places as fast as it can; count the moments the group held too many."""
    group.join(index)
    go.wait(10)
    held = admitted = over = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if group.admit(held) is None:
            held += 1
            admitted += 1
            if group.held() > group.max_calls:
                over += 1
        if held == 2:
            held = 0
            group.release(0, 0)
    group.release(0, 0)
    out.put((admitted, over))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers fork")
def test_two_processes_admitting_at_once_never_pass_the_limit():
    # The check and the taking are one step under the group's lock: however the
    # two race for the last places, the group never holds more than max_calls.
    ctx = multiprocessing.get_context("fork")
    g, out, go = Group(2, max_calls=3), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_admit_and_release, args=(g, i, 0.5, out, go)) for i in (1, 2)]
    for p in procs:
        p.start()
    go.set()
    got = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert all(admitted > 100 for admitted, _ in got), got       # both raced for places
    assert [over for _, over in got] == [0, 0]
    assert g.held() == 0


def snap(active=0, ended=None, frames=0, max_calls=0, draining=0, cpu=0.0):
    """A worker's snapshot: every key a real one has (an idle Ops'), some set."""
    base = Ops(max_calls=None, live=list, admitted=lambda: 0).snapshot()
    return {**base, "cpu_seconds": cpu, "active_calls": active, "admitted_calls": active, "max_calls": max_calls,
            "draining": draining, "ended": ended or {}, "frames_from_carrier": frames,
            "frame_time_counts": [1] * (len(base["frame_time_counts"]) - 1) + [2], "frame_time_sum_ns": 10}


def test_snapshots_published_by_each_worker_are_read_by_any():
    g = Group(3)
    as_worker(g, 1).publish(snap(active=2, frames=10))
    as_worker(g, 3).publish(snap(active=1, frames=5, ended={"stop": 4}))
    as_worker(g, 2)
    assert g.snapshots() == [snap(active=2, frames=10), snap(active=1, frames=5, ended={"stop": 4})]
    # The worker answering a scrape reports its own counters fresh, the others' as last published.
    own = snap(active=7)
    assert g.snapshots(own) == [snap(active=2, frames=10), own, snap(active=1, frames=5, ended={"stop": 4})]
    total = merge(g.snapshots(own))
    assert (total["active_calls"], total["frames_from_carrier"], total["workers"]) == (10, 15, 3)
    assert total["frame_time_counts"][-2:] == [3, 6] and total["ended"] == {"stop": 4}


def test_merge_takes_the_group_wide_settings_once():
    total = merge([snap(max_calls=200, draining=0), snap(max_calls=200, draining=1), snap(max_calls=200)])
    assert (total["max_calls"], total["draining"], total["workers"]) == (200, 1, 3)


def test_a_dead_workers_counters_are_kept_and_its_calls_counted_as_died():
    g = Group(2)
    as_worker(g, 1).publish(snap(active=3, frames=100, ended={"stop": 2}, cpu=1.5))
    g.release(3, 3)
    as_worker(g, 2).publish(snap(active=1, frames=7, cpu=0.5))
    g.join(2)
    g.index = 0                                  # the parent
    g.retire(1)
    assert g._held(1) == 0 and g.active() == 0 and g._read(1) is None
    kept = g._read(0)
    assert kept["ended"] == {"stop": 2, "worker_died": 3} and kept["frames_from_carrier"] == 100
    assert kept["cpu_seconds"] == 1.5
    assert not {"active_calls", "admitted_calls", "workers", "max_calls", "draining"} & set(kept)
    # A second death adds to what was kept; the counters never go backwards.
    as_worker(g, 1).publish(snap(active=0, frames=20, ended={"stop": 1}, cpu=0.25))
    g.index = 0
    g.retire(1)
    kept = g._read(0)
    assert kept["ended"] == {"stop": 3, "worker_died": 3} and kept["frames_from_carrier"] == 120
    assert kept["cpu_seconds"] == 1.75
    # What a scrape sees: the live worker plus what the dead ones counted.
    families = {f.name: f for f in Collector(lambda: g.snapshots()).collect()}
    assert families["rtfast_workers"].samples[0].value == 1
    assert families["rtfast_active_calls"].samples[0].value == 1
    ended = {s.labels["ended"]: s.value for s in families["rtfast_calls"].samples if s.name.endswith("_total")}
    assert ended == {"stop": 3, "worker_died": 3}
    assert families["rtfast_cpu_seconds"].samples[0].value == 2.25


def test_a_torn_read_gives_the_last_whole_snapshot():
    g = as_worker(Group(2), 1)
    g.publish(snap(active=1))
    assert g._read(1) == snap(active=1)
    base = 1 * workers._SLOT
    g._mem[base:base + 8] = (7).to_bytes(8, "little")     # odd: a writer is half way (and never finishes)
    start = base + workers._HEAD.size
    g._mem[start:start + 4] = b"\xff\xff\xff\xff"          # ... and its bytes are half new
    t0 = time.monotonic()
    assert g._read(1) == snap(active=1)                    # not the torn bytes: the last whole one
    assert time.monotonic() - t0 < 1


def test_a_read_that_meets_a_writer_retries_and_gets_the_new_snapshot(monkeypatch):
    g = as_worker(Group(1), 1)
    g.publish(snap(active=1))
    g._read(1)
    base = workers._SLOT
    seq = int.from_bytes(g._mem[base:base + 8], "little")
    g._mem[base:base + 8] = (seq + 1).to_bytes(8, "little")          # a writer starts ...
    new = orjson.dumps(snap(active=2))

    def writer_finishes(_):                                          # ... and finishes while the reader waits
        g._mem[base + workers._LEN:base + workers._LEN + 4] = len(new).to_bytes(4, "little")
        g._mem[base + workers._HEAD.size:base + workers._HEAD.size + len(new)] = new
        g._mem[base:base + 8] = (seq + 2).to_bytes(8, "little")
    monkeypatch.setattr(workers.time, "sleep", writer_finishes)
    assert g._read(1) == snap(active=2)


class SeqSpy(bytearray):
    """A slot's memory that notes the slot's seq whenever a snapshot's bytes are written."""
    seen: list

    def __setitem__(self, key, value):
        if isinstance(key, slice) and len(value) > 8:
            base = key.start - workers._HEAD.size
            self.seen.append(int.from_bytes(self[base:base + 8], "little"))
        super().__setitem__(key, value)


def test_a_snapshot_is_written_under_an_odd_seq_and_ends_even():
    g = as_worker(Group(2), 2)
    spy = SeqSpy(len(g._mem))
    spy.seen = []
    g._mem = spy
    g.publish(snap(active=1))
    g.publish(snap(active=2))
    assert spy.seen == [1, 3]                          # readers see a write in progress ...
    assert int.from_bytes(spy[2 * workers._SLOT:2 * workers._SLOT + 8], "little") == 4    # ... and its end
    assert g._read(2) == snap(active=2)


def test_only_a_joined_worker_writes_a_slot():
    g = Group(2, max_calls=5)
    for write in (lambda: g.publish(snap()), lambda: g.release(1, 1), lambda: g.admit(0)):
        with pytest.raises(RuntimeError, match=r"^Group\.join\(index\) first: only a worker writes a slot of its own$"):
            write()
    assert g._read(0) is None and g.held() == 0


def test_a_stuck_lock_is_waited_for_briefly_then_admission_goes_on_with_one_warning(caplog):
    g = as_worker(Group(2, max_calls=3), 1)
    g._lock.acquire()                                  # as if a worker died holding it
    try:
        with caplog.at_level("WARNING", logger="rtfast.bridge"):
            t0 = time.monotonic()
            assert g.admit(0) is None
            assert 0.09 < time.monotonic() - t0 < 0.6
            assert g.admit(1) is None and g.admit(2) is None         # still checked: 3 of 3 taken
    finally:
        g._lock.release()
    warnings = [r.getMessage() for r in caplog.records if "admission lock is stuck" in r.getMessage()]
    assert warnings == ["the worker group's admission lock is stuck; admitting without it "
                        "(--max-calls may be passed by a call or two)"]
    assert g.held() == 3
    # The lock free again: no warning, and the limit holds.
    caplog.clear()
    assert g.admit(3) == "at the call limit: 3 of 3 calls"
    assert not caplog.records


def test_a_snapshot_too_large_for_its_slot_is_not_written_past_it():
    g = as_worker(Group(2), 1)
    as_worker(g, 2).publish(snap(active=4))
    g.join(1)
    g.publish({"ended": {f"how-{i}": i for i in range(5000)}})        # ~80 KB: more than a slot
    assert g._read(1) is None and g._read(2) == snap(active=4)


def test_available_cores_without_an_affinity_call_or_a_count(monkeypatch):
    # The affinity of this process (pid 0), not of another.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2} if pid == 0 else {0}, raising=False)
    assert available_cores() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(), raising=False)
    assert available_cores() == 1                               # never no worker at all
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # not every platform has it
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert available_cores() == 5
    monkeypatch.setattr(os, "cpu_count", lambda: None)           # unknown
    assert available_cores() == 1


def test_available_cores_follows_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected >= 1


def test_a_snapshot_that_just_fits_its_slot_is_written():
    g = as_worker(Group(1), 1)
    fits = {"x": "a" * (workers._MAX_SNAPSHOT - len(orjson.dumps({"x": ""})))}
    assert len(orjson.dumps(fits)) == workers._MAX_SNAPSHOT
    g.publish(fits)
    assert g._read(1) == fits
    g.publish({"x": fits["x"] + "a"})                  # one byte more: not written (never past the slot)
    assert g._read(1) is None


def test_a_worker_that_died_before_publishing_still_has_its_calls_counted():
    g = Group(2)
    as_worker(g, 2).release(3, 2)                      # three places: two calls in progress, one starting
    g.index = 0
    g.retire(2)
    assert g._read(0) == {"ended": {"worker_died": 2}}        # the calls in progress, not the places
    assert (g.held(), g.active()) == (0, 0)
