"""A bridge under load, in its own process pinned to one core.

    python benchmarks/_load_bridge.py rtfast|rtfast+uvloop|rtfast+uvloop+agent|rtfast+uvloop+live|relay+uvloop|usual \
        PORT BASE_URL CPU

``rtfast``: rtfast's BridgeServer (G.711 passthrough, 20 ms paced frames,
marks); ``+agent``: with a phone agent (a tool, a transcript handler); ``+live``: on GPT-Live
(``protocol="live"``, ``BASE_URL/live/sessions``). ``relay``: the floor, every message
forwarded unchanged (see relay()). ``usual``: a bridge written the usual way, after the official
openai Twilio sample: stdlib json + the official openai realtime client,
each model delta forwarded as one Twilio media message plus a mark.
Prints "ready" once listening.
"""

import asyncio
import json
import os
import sys

from websockets.asyncio.server import serve


async def usual(port: int, base_url: str) -> None:
    import openai

    client = openai.AsyncOpenAI(api_key="sk-load", websocket_base_url=base_url)

    async def handle(ws):
        sid = None
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.session.update(session={
                "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                              "output": {"format": {"type": "audio/pcmu"}}}})

            async def from_openai():
                async for event in conn:
                    if event.type == "response.output_audio.delta" and sid:
                        await ws.send(json.dumps({"event": "media", "streamSid": sid,
                                                  "media": {"payload": event.delta}}))
                        await ws.send(json.dumps({"event": "mark", "streamSid": sid,
                                                  "mark": {"name": "responsePart"}}))

            task = asyncio.create_task(from_openai())
            try:
                async for message in ws:
                    data = json.loads(message)
                    if data["event"] == "media":
                        await conn.input_audio_buffer.append(audio=data["media"]["payload"])
                    elif data["event"] == "start":
                        sid = data["start"]["streamSid"]
                    elif data["event"] == "stop":
                        break
            finally:
                task.cancel()

    async with serve(handle, "127.0.0.1", port, max_size=None, compression=None, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()


def load_agent():
    """A phone agent as a team would write one: instructions, a tool, a
    transcript handler (recording off), so its cost per call can be measured."""
    from rtfast.bridge import Agent

    agent = Agent("You answer the phone. Be brief.", vad=None)

    @agent.tool
    async def get_weather(ctx, city: str) -> dict:
        """The weather in a city."""
        return {"city": city, "temperature": 21}

    @agent.on("transcript")
    def heard(ctx, ev):
        ctx.state["last"] = ev.text

    return agent


async def rtfast_bridge(port: int, base_url: str, agent=None, live: bool = False) -> None:
    from rtfast.bridge.server import BridgeServer

    # The same bridge on GPT-Live: the peer's /v1/live/sessions, session.start from the carrier's format.
    where = ({"realtime_url": base_url + "/live/sessions", "protocol": "live"} if live else
             {"realtime_url": base_url + "/realtime?model=gpt-realtime", "vad": None, "agent": agent})
    async with BridgeServer(port=port, api_key="sk-load", control=None, **where):
        print("ready", flush=True)
        await asyncio.Future()


async def relay(port: int, base_url: str) -> None:
    """The floor: each carrier message goes to the model socket as it is, and each
    model message to the carrier, one write per message received (send_many per
    read), on rtfast's websocket and this loop. No parsing, no call state, no
    pacing, no marks: what any bridge on this stack pays at least per call."""
    from rtfast import websocket

    async def handle(carrier) -> None:
        model = await websocket.connect(base_url + "/realtime?model=gpt-realtime",
                                        headers={"Authorization": "Bearer sk-load"})
        carrier.set_handlers(lambda msg, binary: model.send(msg, binary) if model.state == websocket.OPEN else None)
        model.set_handlers(lambda msg, binary: carrier.send(msg, binary) if carrier.state == websocket.OPEN else None)
        try:
            await carrier.wait_closed()
        finally:
            model.close()

    async with await websocket.serve(handle, "127.0.0.1", port):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    kind, port, base_url, cpu = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    os.sched_setaffinity(0, {cpu})
    if kind == "usual":
        coro = usual(port, base_url)
    elif kind.startswith("relay"):
        coro = relay(port, base_url)
    else:
        coro = rtfast_bridge(port, base_url, load_agent() if kind.endswith("+agent") else None, kind.endswith("+live"))
    if "uvloop" in kind:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
