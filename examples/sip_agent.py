"""Answer incoming SIP calls with a tool-using agent (OpenAI's SIP trunk, webhooks, the sideband).

    python examples/sip_agent.py [--listen 127.0.0.1:8000] [--local] [--calls N]

How a SIP call reaches an application: a phone call comes into your project's SIP
address; OpenAI POSTs a signed ``realtime.call.incoming`` webhook to your URL; you
``accept`` the call with the session's instructions and tools (or ``reject`` it);
then you open the call's sideband websocket (``realtime.connect(call_id=...)``) to
follow the conversation and answer the model's tool calls. The caller's audio
never touches this program: OpenAI carries it.

With OPENAI_API_KEY set (and not --local): point a webhook for
``realtime.call.incoming`` at ``https://YOUR-HOST/webhook`` (proxied to --listen)
and set OPENAI_WEBHOOK_SECRET to its ``whsec_...`` secret; the agent runs until
Ctrl-C. Without a key (or with --local) it runs offline: rtfast's embedded server
plays OpenAI, rings this agent --calls times, and a scripted caller asks about an
order and then for a person (the agent transfers the call with SIP REFER).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

import rtfast
from rtfast.bridge.tools import tool
from rtfast.errors import ConnectionClosed, InvalidWebhookSignatureError

INSTRUCTIONS = ("You answer the phone for Harbour Books. Be brief and friendly. Use get_order_status for "
                "questions about an order, and transfer_call when the caller asks for a person.")
HUMAN = os.environ.get("HARBOUR_BOOKS_DESK", "tel:+14155550123")
_ORDERS = {"A1234": "shipped on Monday, arriving Thursday", "B5678": "waiting for stock"}


class CallContext:
    """What a tool sees of its call: the client and the call's id."""

    def __init__(self, client: rtfast.AsyncOpenAI, call_id: str) -> None:
        self.client, self.call_id = client, call_id


@tool
async def get_order_status(order_id: str) -> dict:
    """An order's delivery status.

    Args:
        order_id: the order number the caller gives, e.g. "A1234"
    """
    return {"order_id": order_id, "status": _ORDERS.get(order_id.strip().upper(), "not found")}


@tool
async def transfer_call(ctx: CallContext) -> str:
    """Transfer the caller to a person at the shop."""
    await ctx.client.realtime.calls.refer(ctx.call_id, target_uri=HUMAN)
    return f"transferred to {HUMAN}"


TOOLS = {t.name: t for t in (get_order_status, transfer_call)}


async def answer(client: rtfast.AsyncOpenAI, call_id: str) -> None:
    """One call: accept it, then follow the sideband and answer tool calls until it ends."""
    await client.realtime.calls.accept(call_id, type="realtime", model=os.environ.get("OPENAI_REALTIME_MODEL",
                                       "gpt-realtime"), instructions=INSTRUCTIONS,
                                       audio={"output": {"voice": "marin"}},
                                       tools=[t.schema() for t in TOOLS.values()])
    ctx = CallContext(client, call_id)
    async with client.realtime.connect(call_id=call_id) as conn:
        async for event in conn:
            if event.type == "conversation.item.done" and getattr(event.item, "role", None) == "user":
                said = next((c.transcript for c in event.item.content or [] if c.transcript), None)
                if said:
                    print(f"[{call_id}] caller: {said}", flush=True)
            elif event.type in ("response.output_audio_transcript.done", "response.output_text.done"):
                print(f"[{call_id}] agent: {getattr(event, 'transcript', None) or event.text}", flush=True)
            elif event.type == "response.function_call_arguments.done":
                output = await TOOLS[event.name].run(ctx, event.arguments) if event.name in TOOLS else \
                    '{"error": "no such tool"}'
                print(f"[{call_id}] tool {event.name}({event.arguments}) -> {output}", flush=True)
                try:
                    await conn.conversation.item.create(item={"type": "function_call_output",
                                                              "call_id": event.call_id, "output": output})
                    await conn.response.create()
                except ConnectionClosed:    # the tool ended the call (a transfer): nothing left to say
                    break
    print(f"[{call_id}] call ended", flush=True)


class WebhookReceiver:
    """A small HTTP endpoint for OpenAI's webhooks: verifies each delivery, answers at once (OpenAI
    retries slow or failed deliveries), and starts ``answer`` for each incoming call."""

    MAX_BODY = 64 * 1024

    def __init__(self, client: rtfast.AsyncOpenAI, host: str, port: int) -> None:
        self.client, self.host, self.port = client, host, port
        self.calls: set[asyncio.Task] = set()

    async def start(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/webhook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = 400
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            request_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            length = int(headers.get("content-length") or 0)
            if not request_line.startswith("POST /webhook ") or length > self.MAX_BODY:
                status = 404 if length <= self.MAX_BODY else 413
            else:
                body = await asyncio.wait_for(reader.readexactly(length), 10)
                status = self.deliver(body, headers)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        writer.write(f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
        writer.close()

    def deliver(self, body: bytes, headers: dict) -> int:
        try:
            event = self.client.webhooks.unwrap(body, headers)
        except InvalidWebhookSignatureError as exc:
            print(f"refused a webhook: {exc}", file=sys.stderr, flush=True)
            return 400
        if event.type == "realtime.call.incoming":
            caller = next((h.value for h in event.data.sip_headers if h.name.lower() == "from"), "?")
            print(f"[{event.data.call_id}] incoming call from {caller}", flush=True)
            task = asyncio.create_task(answer(self.client, event.data.call_id))
            self.calls.add(task)
            task.add_done_callback(self._done)
        return 200

    def _done(self, task: asyncio.Task) -> None:
        self.calls.discard(task)
        if not task.cancelled() and task.exception() is not None:
            print(f"a call failed: {type(task.exception()).__name__}: {task.exception()}", file=sys.stderr,
                  flush=True)


def stand_in_model(session, user):
    """The embedded server's "model" for the offline run: looks an order up, transfers on request."""
    from rtfast.server import FunctionCall, Reply

    if user.function_output is not None:
        return Reply(f"Here is what I found: {user.function_output['output']}")
    heard = " ".join(c.get("transcript") or c.get("text") or "" for c in (user.item or {}).get("content") or [])
    if "order" in heard.lower():
        order = next((w.strip("?.,!") for w in heard.split() if w[:1].isupper() and w[1:2].isdigit()), "A1234")
        return Reply(function_call=FunctionCall("get_order_status", {"order_id": order}))
    if "person" in heard.lower():
        return Reply(function_call=FunctionCall("transfer_call", {}))
    return Reply("Happy to help. Anything else?")


async def offline(host: str, port: int, calls: int) -> None:
    from rtfast._server_calls import SipCalls
    from rtfast.server import RealtimeServer

    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    async with RealtimeServer(script=stand_in_model) as server, \
            SipCalls(server, webhook_secret=secret,
                     caller_says=["Hi, where is my order A1234?", "Thanks. Can I talk to a person?"]) as sip:
        print(f"(no OPENAI_API_KEY or --local: calls come from the embedded server at {server.url})", flush=True)
        client = rtfast.AsyncOpenAI(api_key="sk-local", base_url=sip.base_url, websocket_base_url=server.base_url,
                                    webhook_secret=secret)
        receiver = await WebhookReceiver(client, host, port).start()
        print(f"sip agent: webhooks on {receiver.url}", flush=True)
        for _ in range(calls):
            call_id = await sip.ring(receiver.url)
            call = await sip.wait_ended(call_id)
            while receiver.calls:                   # let the agent's side finish too
                await asyncio.gather(*receiver.calls, return_exceptions=True)
            where = f" to {call.refer_to}" if call.refer_to else ""
            print(f"[{call_id}] {call.status}{where}", flush=True)


async def online(host: str, port: int) -> None:
    client = rtfast.AsyncOpenAI()
    if not client.webhook_secret:
        sys.exit("set OPENAI_WEBHOOK_SECRET to your webhook's signing secret (whsec_...): "
                 "deliveries that cannot be verified are refused")
    receiver = await WebhookReceiver(client, host, port).start()
    print(f"sip agent: webhooks on {receiver.url}; Ctrl-C to stop", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import argument_parser

    parser = argument_parser(__doc__)
    parser.add_argument("--listen", default="127.0.0.1:8000", help="HOST:PORT for the webhook endpoint (port 0: any)")
    parser.add_argument("--calls", type=int, default=1, help="offline: how many calls the embedded server makes")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    try:
        if os.environ.get("OPENAI_API_KEY") and not args.local:
            asyncio.run(online(host or "127.0.0.1", int(port)))
        else:
            asyncio.run(offline(host or "127.0.0.1", int(port), args.calls))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
