"""A GPT-Live peer for the client benchmarks, in its own process (the client gets a core).

On each connection it waits for session.start, answers session.started, then streams
``N`` 100 ms PCM16 24 kHz ``session.output_audio.delta`` frames interleaved with
``session.output_transcript.delta``, then ``session.closed`` and a normal close. Frames are
prebuilt so the peer costs little per frame.

    python benchmarks/_live_peer.py PORT N_DELTAS
"""

import asyncio
import base64
import sys

import numpy as np
import orjson
from websockets.asyncio.server import serve

SESSION = {"id": "sess_1", "expires_at": 1, "model": "gpt-live-1", "status": "active",
           "audio": {"format": {"type": "audio/pcm", "rate": 24000}, "output": {"voice": "marin"}}}


def response_frames(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    frames = [orjson.dumps({"type": "session.started", "event_id": "event_0", "session": SESSION})]
    for i in range(n):
        pcm = (rng.normal(0, 3000, 2400)).astype("<i2").tobytes()
        frames.append(orjson.dumps({"type": "session.output_audio.delta", "delta": base64.b64encode(pcm).decode()}))
        frames.append(orjson.dumps({"type": "session.output_transcript.delta", "event_id": f"event_t{i:019d}",
                                    "delta": "word ", "start_ms": i * 100, "end_ms": i * 100 + 100}))
    frames.append(orjson.dumps({"type": "session.closed", "event_id": "event_end", "reason": "close_requested",
                                "session": SESSION, "usage": {"seconds": n / 10}}))
    return frames


async def main(port: int, n: int) -> None:
    frames = response_frames(n)

    async def handler(ws):
        await ws.recv()                      # session.start
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.close()

    async with serve(handler, "127.0.0.1", port, max_size=None, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
