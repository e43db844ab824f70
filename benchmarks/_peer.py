"""A Realtime peer for client benchmarks, run in its own process so the
client under test has a core to itself.

On each connection it sends session.created, then a response stream of
100 ms PCM16 24 kHz audio deltas interleaved with transcript deltas, then
closes normally. Frames are prebuilt so the peer costs little per frame.
Anything the client sends is read and counted; after ``sink`` appends it
replies with one ``input_audio_buffer.committed`` and closes.

    python benchmarks/_peer.py PORT N_DELTAS SINK
"""

import asyncio
import base64
import sys

import numpy as np
import orjson
from websockets.asyncio.server import serve


def response_frames(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    frames = [orjson.dumps({"type": "session.created", "event_id": "event_0", "session": {
        "type": "realtime", "id": "sess_1", "object": "realtime.session", "model": "gpt-realtime",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}},
                  "output": {"format": {"type": "audio/pcm", "rate": 24000}}}}})]
    for i in range(n):
        pcm = (rng.normal(0, 3000, 2400)).astype("<i2").tobytes()
        frames.append(orjson.dumps({
            "type": "response.output_audio.delta", "event_id": f"event_{i:020d}", "response_id": "resp_1",
            "item_id": "item_1", "output_index": 0, "content_index": 0,
            "delta": base64.b64encode(pcm).decode()}))
        frames.append(orjson.dumps({
            "type": "response.output_audio_transcript.delta", "event_id": f"event_t{i:019d}",
            "response_id": "resp_1", "item_id": "item_1", "output_index": 0, "content_index": 0,
            "delta": "word "}))
    return frames


async def main(port: int, n: int, sink: int) -> None:
    frames = response_frames(n)

    async def handler(ws):
        if sink:
            got = 0
            async for _ in ws:
                got += 1
                if got == sink:
                    await ws.send(b'{"type":"input_audio_buffer.committed","event_id":"e","item_id":"i"}', text=True)
                    break
            await ws.close()
            return
        for frame in frames:
            await ws.send(frame, text=True)
        await ws.close()

    async with serve(handler, "127.0.0.1", port, max_size=None, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
