"""examples/sip_agent.py end to end: the embedded server rings it with signed webhooks, it accepts
each call with its tools, follows the sideband, answers the model's tool calls and transfers
the caller; a forged or unsigned delivery is refused and no call is answered."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import re
import time


from rtfast._server_calls import SipCalls
from rtfast.server import RealtimeServer
from test_examples import EXAMPLES, ok, run

_spec = importlib.util.spec_from_file_location("sip_agent", os.path.join(EXAMPLES, "sip_agent.py"))
sip_agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sip_agent)


def test_offline_calls_use_the_tools_and_transfer():
    start = time.monotonic()
    out = ok(run("sip_agent.py", "--listen", "127.0.0.1:0", "--calls", 2))
    assert time.monotonic() - start < 30
    ids = re.findall(r"\[(rtc_\w+)\] incoming call from <sip:\+15551230000@", out)
    assert len(ids) == 2 and ids[0] != ids[1]
    for call_id in ids:
        lines = [line.split("] ", 1)[1] for line in out.splitlines() if line.startswith(f"[{call_id}]")]
        assert lines[1:] == [
            "caller: Hi, where is my order A1234?",
            'tool get_order_status({"order_id":"A1234"}) -> {"order_id":"A1234","status":"shipped on Monday, '
            'arriving Thursday"}',
            'agent: Here is what I found: {"order_id":"A1234","status":"shipped on Monday, arriving Thursday"}',
            "caller: Thanks. Can I talk to a person?",
            "tool transfer_call({}) -> transferred to tel:+14155550123",
            "call ended",
            "referred to tel:+14155550123",
        ], out


SECRET = "whsec_" + base64.b64encode(b"a" * 32).decode()
FORGER = "whsec_" + base64.b64encode(b"b" * 32).decode()


async def test_the_receiver_answers_only_genuine_deliveries():
    async with RealtimeServer(script=sip_agent.stand_in_model) as server, \
            SipCalls(server, webhook_secret=FORGER, caller_says=["Where is my order B5678?"]) as sip:
        client = sip_agent.rtfast.AsyncOpenAI(api_key="sk-test", base_url=sip.base_url,
                                              websocket_base_url=server.base_url, webhook_secret=SECRET)
        receiver = await sip_agent.WebhookReceiver(client, "127.0.0.1", 0).start()
        forged = await sip.ring(receiver.url)
        assert sip.calls[forged].webhook_status == 400
        await asyncio.sleep(0.05)
        assert sip.calls[forged].status == "ringing" and not receiver.calls
        sip._secret = SECRET                    # now signed with the endpoint's secret
        genuine = await sip.ring(receiver.url)
        assert sip.calls[genuine].webhook_status == 200
        call = await sip.wait_ended(genuine)
        await asyncio.gather(*receiver.calls)
        assert call.status == "ended" and call.ended_by == "caller"
        assert call.session["tools"][0]["name"] == "get_order_status"
        outputs = [e["item"]["output"] for e in server.received[0] if e["type"] == "conversation.item.create"]
        assert outputs == ['{"order_id":"B5678","status":"waiting for stock"}']


def test_online_without_a_webhook_secret_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_WEBHOOK_SECRET", raising=False)
    result = run("sip_agent.py", env_extra={"OPENAI_API_KEY": "sk-test"}, timeout=30)
    assert result.returncode == 1 and "OPENAI_WEBHOOK_SECRET" in result.stderr and "Traceback" not in result.stderr
