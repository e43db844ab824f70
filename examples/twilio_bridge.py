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
transcoding); without it (or with --local), to the embedded local realtime
server. With TWILIO_AUTH_TOKEN set, each connection's X-Twilio-Signature is
checked against --public-url, the wss:// URL in your TwiML (required then).
"""

import asyncio
import logging
import os

from _common import argument_parser
from rtfast.bridge.server import BridgeServer
from rtfast.server import RealtimeServer, Script


async def main(host: str, port: int, public_url: str | None, seconds: float | None, local: bool = False) -> None:
    local_server = None
    realtime_url = None
    if local or not os.environ.get("OPENAI_API_KEY"):
        local_server = await RealtimeServer(script=Script(reply_text="Hello from the local server!"),
                                            require_auth=False).start()
        realtime_url = local_server.url
        print(f"{'--local' if local else 'no OPENAI_API_KEY'}: using the embedded realtime server at {realtime_url}")
    try:
        bridge = BridgeServer(carrier="twilio", host=host, port=port, realtime_url=realtime_url,
                              instructions="You answer the phone for a pizzeria. Keep answers short.",
                              voice="alloy", twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
                              public_url=public_url)
        async with bridge:
            print(f"Twilio bridge listening on {bridge.url} (use wss://YOUR-HOST/stream in the TwiML)", flush=True)
            if seconds is None:
                await bridge.serve_forever()
            else:
                await asyncio.sleep(seconds)
    finally:
        if local_server is not None:
            await local_server.close()


if __name__ == "__main__":
    parser = argument_parser(__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--public-url", help="the wss:// URL Twilio connects to (signature checks need it)")
    parser.add_argument("--seconds", type=float, help="stop after this long (default: run until Ctrl-C)")
    args = parser.parse_args()
    if os.environ.get("TWILIO_AUTH_TOKEN") and not args.public_url:
        parser.error("TWILIO_AUTH_TOKEN is set: give --public-url, the wss:// URL Twilio connects to "
                     "(the signature covers it)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(main(args.host, args.port, args.public_url, args.seconds, args.local))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
