"""rtfast.bridge.workers.Group, sans sockets: the numbers a process group shares
(admission across workers, published snapshots, a dead worker's counters)."""

import multiprocessing
import os
import time

import pytest

from rtfast.bridge.ops import Collector, Ops, merge
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
    g = as_worker(Group(1), 1)
    g.publish(snap(active=1))
    assert g._read(1) == snap(active=1)
    g._mem[0:8] = (7).to_bytes(8, "little")        # odd: a writer is half way (and never finishes)
    t0 = time.monotonic()
    assert g._read(1) == snap(active=1)
    assert time.monotonic() - t0 < 1


def test_a_snapshot_too_large_for_its_slot_is_not_written_past_it():
    g = as_worker(Group(2), 1)
    as_worker(g, 2).publish(snap(active=4))
    g.join(1)
    g.publish({"ended": {f"how-{i}": i for i in range(5000)}})        # ~80 KB: more than a slot
    assert g._read(1) is None and g._read(2) == snap(active=4)


def test_available_cores_follows_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected >= 1
