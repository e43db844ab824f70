"""Operations for one bridge process: health, readiness, admission, metrics, JSON logs.

Sans-I/O where it can be: nothing here touches a socket. :class:`BridgeServer`
(rtfast.bridge.server) asks :class:`Ops` what to answer a plain HTTP request
on its own port (``/healthz``, ``/readyz``, ``/metrics``), whether to admit a
new call, and tells it when a call ends.

The hot path pays nothing new per frame beyond what :class:`rtfast.bridge.Call`
already counts in plain integers: a scrape reads those integers (live calls)
and the sums kept for finished calls, and only then builds Prometheus metric
families through ``prometheus_client``. The time a carrier frame spends in the
bridge is sampled (the server times one frame per 10 ms pacer tick, from each
call in turn) into plain bucket counters.

Everything a scrape reports comes from :meth:`Ops.snapshot`, a dict of plain
numbers, and :func:`merge` sums several of them: a process group (``--workers``)
has each worker publish its snapshot and the worker that answers the scrape
merge them all (see docs/deploying.md).
"""

from __future__ import annotations

import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Response

__all__ = ["Ops", "FrameTimes", "merge", "JsonFormatter", "OPS_PATHS"]

#: Paths answered as plain HTTP on the carrier port (never upgraded).
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

# Upper bounds of the frame-time histogram, nanoseconds (5 µs .. 50 ms).
_FRAME_BOUNDS_NS = (5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000,
                    5_000_000, 10_000_000, 50_000_000)

# Counters summed over calls: the Call attribute each comes from.
_CALL_COUNTERS = ("frames_from_carrier", "frames_to_carrier", "frames_from_realtime", "frames_to_realtime",
                  "audio_bytes_in", "audio_bytes_out", "barge_ins")


class FrameTimes:
    """A histogram in plain integers: counts per bucket, the sum in ns."""

    __slots__ = ("bounds", "counts", "sum_ns")

    def __init__(self, bounds: tuple = _FRAME_BOUNDS_NS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)      # the last one: above every bound
        self.sum_ns = 0

    def observe(self, ns: int) -> None:
        self.counts[bisect_left(self.bounds, ns)] += 1
        self.sum_ns += ns


def _response(status: int, reason: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, reason, Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                                             ("Cache-Control", "no-store"), ("Connection", "close")]), body)


class Ops:
    """Admission, readiness and the counters of one bridge process.

    ``max_calls``: calls admitted at once (None: no limit). ``live`` returns
    the per-call objects of the calls in progress (the server's ``_CallIO``s:
    ``.call`` a :class:`Call`, ``.app`` an agent runner or None) for a scrape.
    ``admitted`` returns how many calls hold a place now (in progress, or
    upgraded and about to start).
    """

    def __init__(self, *, max_calls: int | None, live: Callable[[], Iterable], admitted: Callable[[], int],
                 group=None) -> None:
        if max_calls is not None and max_calls < 1:
            raise ValueError(f"max_calls must be at least 1 (or None: no limit), not {max_calls}")
        self.max_calls = max_calls
        # A worker of a process group (rtfast.bridge.workers.Group): max_calls
        # counts the group's calls, and a scrape reports the whole group.
        self.group = group
        self.draining = False
        self._live = live
        self._admitted = admitted
        # Sums over finished calls, by Call attribute, plus what the runner counts.
        self.finished = dict.fromkeys(_CALL_COUNTERS, 0)
        self.tool_calls = self.reconnects = 0
        self.ended: dict[str, int] = {}             # how calls ended -> count (refused ones too)
        self.underruns = 0
        self.pacer_stalls = 0
        self.frame_times = FrameTimes()
        self.started = time.time()
        self._registry = None

    # -- admission and readiness ---------------------------------------------------------------
    def refusal(self) -> str | None:
        """Why a new call may not start now, or None when it may."""
        if self.draining:
            return "draining: no new calls"
        if self.max_calls is not None:
            n = self._admitted() if self.group is None else self.group.held()
            if n >= self.max_calls:
                return f"at the call limit: {n} of {self.max_calls} calls"
        return None

    def admit(self) -> str | None:
        """Take a place for a new call: None when it may start (the caller then
        counts it in ``admitted``), else why not. In a group the check and the
        taking are one step under the group's lock."""
        if self.group is None or self.draining:
            return self.refusal()
        return self.group.admit(self._admitted())

    def calls_changed(self) -> None:
        """A call started or ended, or an admitted upgrade never became one: tell the group."""
        if self.group is not None:
            self.group.release(self._admitted(), len(self._live()))

    def publish(self) -> None:
        """Publish this worker's snapshot for the group's scrapes (once a second)."""
        if self.group is not None:
            self.group.publish(self.snapshot())

    def refuse(self, why: str) -> Response:
        """The 503 that refuses an upgrade (the carrier fails over to another bridge)."""
        self.ended["refused"] = self.ended.get("refused", 0) + 1
        return _response(503, "Service Unavailable", f"{why}\n".encode(), )

    def answer(self, path: str) -> Response:
        """The plain HTTP answer for one of OPS_PATHS."""
        if path == "/healthz":
            return _response(200, "OK", b"ok\n")
        if path == "/readyz":
            why = self.refusal()
            if why is None:
                return _response(200, "OK", b"ready\n")
            return _response(503, "Service Unavailable", f"{why}\n".encode())
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return _response(200, "OK", generate_latest(self.registry()), CONTENT_TYPE_LATEST)

    # -- counting --------------------------------------------------------------------------------
    def call_ended(self, io, how: str) -> None:
        """A call is over: add its counters to the sums (once per call, not per frame)."""
        call, fin = io.call, self.finished
        for name in _CALL_COUNTERS:
            fin[name] += getattr(call, name)
        app = io.app
        if app is not None:
            self.tool_calls += app.dialog.tool_calls
            self.reconnects += app.reconnects
        self.ended[how] = self.ended.get(how, 0) + 1

    def snapshot(self) -> dict:
        """Every metric as plain numbers: finished calls' sums plus live calls' counters now."""
        totals = dict(self.finished)
        tool_calls, reconnects, active = self.tool_calls, self.reconnects, 0
        for io in self._live():
            active += 1
            call = io.call
            for name in _CALL_COUNTERS:
                totals[name] += getattr(call, name)
            app = io.app
            if app is not None:
                tool_calls += app.dialog.tool_calls
                reconnects += app.reconnects
        ft = self.frame_times
        cpu = os.times()
        return {"workers": 1, "cpu_seconds": cpu.user + cpu.system, "active_calls": active,
                "admitted_calls": self._admitted(), "max_calls": self.max_calls or 0,
                "draining": int(self.draining), "ended": dict(self.ended), **totals, "tool_calls": tool_calls,
                "reconnects": reconnects, "underruns": self.underruns, "pacer_stalls": self.pacer_stalls,
                "frame_time_counts": list(ft.counts), "frame_time_sum_ns": ft.sum_ns,
                "frame_time_bounds_ns": list(ft.bounds)}

    def registry(self):
        """A prometheus_client registry holding this process's collector (built on first use)."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry, ProcessCollector

            self._registry = CollectorRegistry(auto_describe=False)
            if self.group is None:
                self._registry.register(Collector(lambda: [self.snapshot()]))
                ProcessCollector(registry=self._registry)      # CPU seconds, memory, open fds of this process
            else:
                # Every worker's last published snapshot, this one's fresh (the
                # process_* metrics would describe only whichever worker answered).
                self._registry.register(Collector(lambda: self.group.snapshots(self.snapshot()),
                                                  lambda: {"active_calls": self.group.active(),
                                                           "admitted_calls": self.group.held()}))
        return self._registry


# Group-wide settings, the same in every worker: a group reports the largest, not a sum.
_GROUP_WIDE = frozenset({"max_calls", "draining"})


def merge(snapshots: list[dict]) -> dict:
    """Sum snapshots of several processes (a process group's view): numbers add,
    dicts add per key, lists add element-wise; ``max_calls`` and ``draining``
    (one setting for the whole group) take the largest."""
    out: dict = {}
    for snap in snapshots:
        for k, v in snap.items():
            if k == "frame_time_bounds_ns":
                out[k] = v
            elif k in _GROUP_WIDE:
                out[k] = max(out.get(k, 0), v)
            elif isinstance(v, dict):
                d = out.setdefault(k, {})
                for kk, vv in v.items():
                    d[kk] = d.get(kk, 0) + vv
            elif isinstance(v, list):
                cur = out.get(k)
                out[k] = list(v) if cur is None else [a + b for a, b in zip(cur, v)]
            else:
                out[k] = out.get(k, 0) + v
    return out


class Collector:
    """prometheus_client collector: builds the metric families from snapshots at scrape time."""

    def __init__(self, snapshots: Callable[[], list[dict]], current: Callable[[], dict] | None = None) -> None:
        self._snapshots = snapshots
        self._current = current     # values read fresh at scrape time, over the snapshots' (a group's call counts)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        s = merge(self._snapshots())
        if self._current is not None:
            s.update(self._current())
        yield GaugeMetricFamily("rtfast_active_calls", "Calls in progress.", value=s.get("active_calls", 0))
        yield GaugeMetricFamily("rtfast_workers", "Bridge processes reporting (--workers).",
                                value=s.get("workers", 0))
        yield CounterMetricFamily("rtfast_cpu_seconds", "CPU time (user and system) of the bridge processes, "
                                  "workers that died included.", value=s.get("cpu_seconds", 0.0))
        yield GaugeMetricFamily("rtfast_admitted_calls", "Calls holding a place against --max-calls "
                                "(in progress, or upgraded and starting).", value=s["admitted_calls"])
        yield GaugeMetricFamily("rtfast_max_calls", "The call limit (--max-calls; 0: none).", value=s["max_calls"])
        yield GaugeMetricFamily("rtfast_draining", "1 while draining (no new calls).", value=s["draining"])
        ended = CounterMetricFamily("rtfast_calls", "Calls by how they ended (refused: turned away with 503).",
                                    labels=["ended"])
        for how, n in sorted(s["ended"].items()):
            ended.add_metric([how], n)
        yield ended
        yield CounterMetricFamily("rtfast_barge_ins", "Times the caller spoke over the assistant.",
                                  value=s["barge_ins"])
        yield CounterMetricFamily("rtfast_tool_calls", "Function calls asked by the model (agents).",
                                  value=s["tool_calls"])
        yield CounterMetricFamily("rtfast_realtime_reconnects", "Realtime connections replaced mid-call (agents).",
                                  value=s["reconnects"])
        yield CounterMetricFamily("rtfast_audio_underruns", "Calls whose playback ran dry while their audio "
                                  "waited in the bridge (found when the pacer came late).", value=s["underruns"])
        yield CounterMetricFamily("rtfast_pacer_stalls", "Times the shared pacer woke more than one tick late.",
                                  value=s["pacer_stalls"])
        frames = CounterMetricFamily("rtfast_frames", "Websocket messages by direction.", labels=["direction"])
        for label, key in (("from_carrier", "frames_from_carrier"), ("to_carrier", "frames_to_carrier"),
                           ("from_realtime", "frames_from_realtime"), ("to_realtime", "frames_to_realtime")):
            frames.add_metric([label], s[key])
        yield frames
        audio = CounterMetricFamily("rtfast_audio_bytes", "Audio bytes carried, in the carrier's format "
                                    "(from_carrier: the caller; to_carrier: the assistant).", labels=["direction"])
        audio.add_metric(["from_carrier"], s["audio_bytes_in"])
        audio.add_metric(["to_carrier"], s["audio_bytes_out"])
        yield audio
        buckets, acc = [], 0
        for bound, n in zip(s["frame_time_bounds_ns"], s["frame_time_counts"]):
            acc += n
            buckets.append((repr(bound / 1e9), acc))
        acc += s["frame_time_counts"][-1]
        buckets.append(("+Inf", acc))
        yield HistogramMetricFamily("rtfast_carrier_frame_seconds", "Time a carrier frame spends in the bridge, "
                                    "from its message to the realtime write (sampled: up to 100 frames a "
                                    "second, calls in turn).", buckets=buckets, sum_value=s["frame_time_sum_ns"] / 1e9)


# -- logs -----------------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    the call id when the line is about a call, the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        call = getattr(record, "call", None)
        if call is not None:
            out["call"] = call
        worker = getattr(record, "worker", None)
        if worker is not None:
            out["worker"] = worker
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def quiet_probes(record: logging.LogRecord) -> bool:
    """A logging filter: drop websockets' line for each probe or scrape answered
    (200) and each call refused at the limit (503: the bridge logs those itself, a line per interval)."""
    return not (record.msg == "HTTP response sent (%d %s)" and record.args and record.args[0] in (200, 503))
