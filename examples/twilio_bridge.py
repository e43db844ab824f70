"""The smallest useful Twilio <-> OpenAI Realtime bridge.

    python examples/twilio_bridge.py            # listens on 127.0.0.1:8080

Expose the port over TLS (a reverse proxy, or a tunnel during development) and
point a Twilio number's voice webhook at TwiML like this:

    <?xml version="1.0" encoding="UTF-8"?>
    <Response>
      <Connect>
        <Stream url="wss://YOUR-HOST/stream" />
      </Connect>
    </Response>

With OPENAI_API_KEY set, calls talk to OpenAI (G.711 μ-law end to end, no
transcoding); without it, to the embedded local realtime server. Set
TWILIO_AUTH_TOKEN and --public-url to check Twilio's request signature.
"""

import argparse
import asyncio
import logging
import os

from rtfast.bridge.server import BridgeServer
from rtfast.server import RealtimeServer, Script


async def main(host: str, port: int, public_url: str | None, seconds: float | None) -> None:
    local = None
    realtime_url = None
    if not os.environ.get("OPENAI_API_KEY"):
        local = await RealtimeServer(script=Script(reply_text="Hello from the local server!"),
                                     require_auth=False).start()
        realtime_url = local.url
        print(f"no OPENAI_API_KEY: using the embedded realtime server at {realtime_url}")
    bridge = BridgeServer(carrier="twilio", host=host, port=port, realtime_url=realtime_url,
                          instructions="You answer the phone for a pizzeria. Keep answers short.",
                          voice="alloy", twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN"),
                          public_url=public_url)
    async with bridge:
        print(f"Twilio bridge listening on {bridge.url} (use wss://YOUR-HOST/stream in the TwiML)", flush=True)
        try:
            if seconds is None:
                await bridge.serve_forever()
            else:
                await asyncio.sleep(seconds)
        finally:
            if local is not None:
                await local.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--public-url", help="the wss:// URL Twilio connects to (for signature checks)")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: run until Ctrl-C)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(main(args.host, args.port, args.public_url, args.seconds))
    except KeyboardInterrupt:
        pass
