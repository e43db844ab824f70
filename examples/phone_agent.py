"""A complete phone agent on rtfast's bridge: per-call greeting, a tool, keypad digits,
transfer, recording.

    python examples/phone_agent.py --carrier twilio --listen 127.0.0.1:8080 [--realtime-url URL] [--record DIR]

Without OPENAI_API_KEY and without --realtime-url it talks to rtfast's embedded
local realtime server (a stand-in model), so it runs offline. For Twilio, point
a number's voice webhook at TwiML that passes the caller's name:

    <Response><Connect><Stream url="wss://YOUR-HOST/stream">
      <Parameter name="caller_name" value="Ada" />
    </Stream></Connect></Response>

What the agent does:
- greets the caller by the name in Twilio's ``customParameters.caller_name``;
- answers ``get_weather(city)`` with JSON holding a ``temperature``;
- hears keypad digits (they reach the model as "The caller pressed 1 ...");
- offers ``transfer_call``: the carrier's REST API moves the call (set the
  carrier's credentials, e.g. TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN);
- with ``--record DIR``, writes a stereo WAV and a JSONL transcript per call.
Run ``rtfast bridge --app examples.phone_agent:agent`` for the same agent from the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Literal

from rtfast.bridge import Agent, BridgeServer

agent = Agent(
    "You answer the phone for the Harbour Hotel. Be brief and friendly. "
    "Use get_weather for weather questions and transfer_call when the caller asks for a person.",
    voice="marin",
    greeting="Hello, Harbour Hotel, how can I help?",
)

# A small table instead of a weather service: the example runs offline.
_WEATHER = {"paris": 18, "london": 14, "oslo": 6, "lisbon": 22}


@agent.setup
def greet_by_name(ctx) -> None:
    """Per call: the caller's name (from the carrier's start message) goes into
    the instructions and the greeting."""
    name = (ctx.start.custom_parameters or {}).get("caller_name") if ctx.start else None
    if name:
        ctx.config.instructions += f" The caller's name is {name}; greet them by name."
        ctx.config.greeting = f"Hello {name}, Harbour Hotel, how can I help?"


@agent.tool
async def get_weather(ctx, city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """The current weather in a city.

    Args:
        city: the city's name, e.g. "Paris"
        unit: the temperature unit
    """
    celsius = _WEATHER.get(city.strip().lower(), 20)
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": city, "temperature": temperature, "unit": unit, "conditions": "partly cloudy"}


@agent.tool(timeout=30)
async def transfer_call(ctx, department: Literal["reception", "restaurant"] = "reception") -> str:
    """Transfer the caller to a person at the hotel."""
    number = os.environ.get(f"HOTEL_{department.upper()}_NUMBER", "+15550100")
    await ctx.transfer(number, say="Putting you through now.")
    return f"transferred to {department}"


@agent.on("transcript")
def show(ctx, ev) -> None:
    print(f"[{ctx.call_id}] {ev.role}: {ev.text}", flush=True)


@agent.on("call_ended")
def summary(ctx, ev) -> None:
    s = ev.summary
    print(f"[{ctx.call_id}] ended ({s.get('ended')}): {s.get('duration_ms', 0) / 1000:.1f} s, "
          f"{s.get('tool_calls', 0)} tool calls, {s.get('barge_ins', 0)} barge-ins", flush=True)


async def main(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    realtime_url, local = args.realtime_url, None
    if realtime_url is None and not os.environ.get("OPENAI_API_KEY"):
        from rtfast.server import RealtimeServer, Script

        local = await RealtimeServer(script=Script(reply_text="Certainly, let me help with that."),
                                     require_auth=False).start()
        realtime_url = local.url
        print(f"no OPENAI_API_KEY: calls go to the embedded realtime server at {realtime_url}", flush=True)
    agent.record = args.record
    bridge = BridgeServer(carrier=args.carrier, host=host or "127.0.0.1", port=int(port),
                          realtime_url=realtime_url, agent=agent)
    try:
        async with bridge:
            print(f"phone agent ({args.carrier}) listening on {bridge.url}", flush=True)
            if args.seconds is None:
                await bridge.serve_forever()
            else:
                await asyncio.sleep(args.seconds)
    finally:
        if local is not None:
            await local.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--carrier", default="twilio", choices=["twilio", "telnyx", "plivo", "exotel", "vonage"],
                        help="the carrier whose media streams connect (default: %(default)s)")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT for carrier websockets "
                        "(default: %(default)s)")
    parser.add_argument("--realtime-url", help="a Realtime-compatible ws:// URL (default: OpenAI with "
                        "OPENAI_API_KEY, else the embedded local server)")
    parser.add_argument("--record", metavar="DIR", help="write a stereo WAV and a JSONL transcript per call here")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: run until Ctrl-C)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(main(args))
    except KeyboardInterrupt:
        pass
