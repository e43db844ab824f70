"""One call's bridge work in-process: the per-message Python cost without sockets.

benchmarks/_callsim.py replays 10 s of one Twilio call (50 media frames in, the marks echoed,
the model's deltas and transcript, the pacer's ticks every 10 ms) through the real
WebSocket -> _CallIO -> Call -> WebSocket path over transports that only count what is written.
Beside it, ``relay``: the same inbound bytes through two websockets forwarding each message
unchanged (the load benchmark's relay+uvloop floor, minus the syscalls). One round is 10 call-seconds.
"""

import pytest

import _callsim

SECONDS = 10
SCRIPT = _callsim.record(SECONDS)


@pytest.mark.parametrize("impl", ["rtfast", "relay"])
def test_call_seconds(benchmark, impl):
    benchmark.group = f"bridge: {SECONDS} call-seconds of Twilio traffic, in-process (no sockets)"
    fn = _callsim.replay if impl == "rtfast" else _callsim.replay_relay
    cpu, cws, rws = benchmark.pedantic(fn, args=(SCRIPT,), rounds=10, iterations=1)
    assert rws.transport.writes >= 50 * SECONDS - 1      # every caller frame reached the model
    if impl == "rtfast":
        assert cws.transport.writes > 0                   # and the model's audio the caller


def test_replay_is_deterministic():
    """The harness measures the same work each time: two replays write the same messages."""
    assert _callsim.digest(*_callsim.replay(SCRIPT, keep=True)[1:]) == \
        _callsim.digest(*_callsim.replay(SCRIPT, keep=True)[1:])
