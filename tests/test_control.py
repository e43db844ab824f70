"""rtfast.bridge.control: each carrier's hang-up and transfer against a local fake
of its REST endpoint (tests/carrier_fakes.py)."""

import socket
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from carrier_fakes import ExotelFake, FakeServer, PlivoFake, Reply, TelnyxFake, TwilioFake, VonageFake
from rtfast.bridge.carriers import ExotelCodec, PlivoCodec, Start, TelnyxCodec, TwilioCodec, VonageCodec
from rtfast.bridge.control import (CONTROLS, ExotelControl, PlivoControl, TelnyxControl, TwilioControl,
                                   VonageControl, control_for, plivo_dial_xml)
from rtfast.errors import CallControlError, CallControlNotSupported, RtfastError
from rtfast.http import HttpClient

TW_SID, TW_TOKEN = "AC0123456789abcdef", "tw-auth-token-SECRET"
TX_KEY = "KEY0123-telnyx-SECRET"
PL_ID, PL_TOKEN = "MAXXXXXXXXXXXXXXXXXX", "plivo-token-SECRET"
VG_JWT = "eyJhbGciOiJSUzI1NiJ9.vonage-SECRET.sig"
EX_SID, EX_KEY, EX_TOKEN = "exotel1", "exo-key-SECRET", "exo-token-SECRET"
SECRETS = (TW_TOKEN, TX_KEY, PL_TOKEN, VG_JWT, EX_KEY, EX_TOKEN)


# -- start messages, through the real codecs ------------------------------------------------------

def twilio_start(call_sid="CA1"):
    return TwilioCodec().parse(orjson.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "streamSid": "MZ1", "accountSid": TW_SID, "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": {"caller_name": "Ada"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))


def telnyx_start(ccid="v3:abc/DEF+g=="):
    return TelnyxCodec().parse(orjson.dumps({"event": "start", "sequence_number": "1", "stream_id": "S1", "start": {
        "user_id": "u1", "call_control_id": ccid, "call_session_id": "cs1",
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}))


def plivo_start(call_id="c0ffee-uuid"):
    return PlivoCodec().parse(orjson.dumps({"event": "start", "sequenceNumber": 0, "start": {
        "callId": call_id, "streamId": "st1", "accountId": "acc", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}))


def vonage_start(uuid="63f61863-4a51-4f6b-86e1-46edebcf9356"):
    return VonageCodec().parse(orjson.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=16000",
                                             "uuid": uuid}))


def exotel_start(call_sid="exocall1", custom=None):
    return ExotelCodec().parse(orjson.dumps({"event": "start", "sequence_number": "1", "stream_sid": "es1", "start": {
        "stream_sid": "es1", "call_sid": call_sid, "account_sid": EX_SID, "custom_parameters": custom or {},
        "media_format": {"encoding": "base64", "sample_rate": "8000", "bit_rate": "16"}}}))


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked into {text!r}"


# -- Twilio ---------------------------------------------------------------------------------------

async def test_twilio_hangup():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1"}) as fake:
        control = TwilioControl(TW_SID, TW_TOKEN, base_url=fake.base_url)
        await control.hangup(twilio_start())
        await control.aclose()
    assert fake.calls["CA1"] == "completed"
    (req,) = fake.requests
    assert (req.method, req.path) == ("POST", f"/2010-04-01/Accounts/{TW_SID}/Calls/CA1.json")
    assert req.form == {"Status": "completed"}


async def test_twilio_transfer_to_number_and_sip_is_xml_escaped():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1", "CA2"}) as fake:
        control = TwilioControl(TW_SID, TW_TOKEN, base_url=fake.base_url)
        await control.transfer(twilio_start("CA1"), "+1 (555) 123-4567")
        sip = "sip:agent@pbx.example.com;transport=tls?X-Queue=a&X-Pri=1"
        await control.transfer(twilio_start("CA2"), sip)
    assert fake.transfers == [("CA1", ("number", "+15551234567")), ("CA2", ("sip", sip))]
    twiml = fake.requests[1].form["Twiml"]
    assert "&amp;" in twiml and ET.fromstring(twiml).find("Dial/Sip").text == sip
    assert fake.requests[0].form["Twiml"] == "<Response><Dial>+15551234567</Dial></Response>"


async def test_twilio_hangup_of_an_ended_call_is_not_an_error_but_transfer_is():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1"}) as fake:
        control = TwilioControl(TW_SID, TW_TOKEN, base_url=fake.base_url)
        await control.hangup(twilio_start())
        await control.hangup(twilio_start())  # 20404: already gone
        with pytest.raises(CallControlError) as info:
            await control.transfer(twilio_start(), "+15551234567")
    e = info.value
    assert (e.carrier, e.action, e.status) == ("twilio", "transfer", 404)
    assert "was not found" in e.message and "code 20404" in e.message


async def test_twilio_bad_credentials():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1"}) as fake:
        control = TwilioControl(TW_SID, "wrong-token-xyz", base_url=fake.base_url)
        with pytest.raises(CallControlError) as info:
            await control.hangup(twilio_start())
    assert info.value.status == 401 and "Authenticate" in str(info.value)
    assert "twilio hangup failed: HTTP 401" in str(info.value)
    assert "wrong-token-xyz" not in str(info.value) and "wrong-token-xyz" not in repr(control)
    assert fake.calls["CA1"] == "in-progress"


# -- Telnyx ---------------------------------------------------------------------------------------

async def test_telnyx_hangup_and_transfer():
    ccid = "v3:abc/DEF+g=="
    async with TelnyxFake(TX_KEY, calls={ccid, "v3:two"}) as fake:
        control = TelnyxControl(TX_KEY, base_url=fake.base_url)
        await control.transfer(telnyx_start(ccid), "sip:support@pbx.example.com")
        await control.hangup(telnyx_start("v3:two"))
    assert fake.transfers == [(ccid, "sip:support@pbx.example.com")]
    assert fake.calls == {ccid: "transferred", "v3:two": "completed"}
    assert fake.requests[0].raw_path == "/v2/calls/v3:abc%2FDEF%2Bg%3D%3D/actions/transfer"
    assert fake.requests[0].json == {"to": "sip:support@pbx.example.com"}
    assert fake.requests[0].headers["authorization"] == f"Bearer {TX_KEY}"


async def test_telnyx_call_control_id_from_raw_start():
    start = Start(stream_id="S1", raw={"event": "start", "start": {"call_control_id": "v3:raw"}})
    async with TelnyxFake(TX_KEY, calls={"v3:raw"}) as fake:
        await TelnyxControl(TX_KEY, base_url=fake.base_url).hangup(start)
    assert fake.calls["v3:raw"] == "completed"


async def test_telnyx_already_ended():
    async with TelnyxFake(TX_KEY, calls={"v3:x"}) as fake:
        control = TelnyxControl(TX_KEY, base_url=fake.base_url)
        await control.hangup(telnyx_start("v3:x"))
        await control.hangup(telnyx_start("v3:x"))  # 422 / 90018: not an error for a hang-up
        with pytest.raises(CallControlError) as info:
            await control.transfer(telnyx_start("v3:x"), "+15551234567")
    assert info.value.status == 422 and "Call has already ended" in info.value.message
    assert "90018" in info.value.message


async def test_telnyx_bad_key():
    async with TelnyxFake(TX_KEY, calls={"v3:x"}) as fake:
        with pytest.raises(CallControlError) as info:
            await TelnyxControl("KEYwrong-telnyx", base_url=fake.base_url).hangup(telnyx_start("v3:x"))
    assert info.value.status == 401 and "Authentication failed" in str(info.value)
    assert "KEYwrong-telnyx" not in str(info.value)


# -- Plivo ----------------------------------------------------------------------------------------

async def test_plivo_hangup_deletes_the_call():
    async with PlivoFake(PL_ID, PL_TOKEN, calls={"c0ffee-uuid"}) as fake:
        await PlivoControl(PL_ID, PL_TOKEN, base_url=fake.base_url).hangup(plivo_start())
        await PlivoControl(PL_ID, PL_TOKEN, base_url=fake.base_url).hangup(plivo_start())  # 404: already gone
    assert fake.calls["c0ffee-uuid"] == "completed"
    assert [(r.method, r.path) for r in fake.requests] == [("DELETE", f"/v1/Account/{PL_ID}/Call/c0ffee-uuid/")] * 2


async def test_plivo_transfer_through_the_answer_url():
    async with PlivoFake(PL_ID, PL_TOKEN, calls={"c0ffee-uuid"}) as fake:
        control = PlivoControl(PL_ID, PL_TOKEN, base_url=fake.base_url,
                               transfer_url="https://app.example.com/plivo/transfer?to={to}")
        await control.transfer(plivo_start(), "+44 20 7946 0018")
    ((cid, (url, method)),) = fake.transfers
    assert cid == "c0ffee-uuid" and method == "GET"
    assert parse_qs(urlsplit(url).query) == {"to": ["+442079460018"]}
    assert fake.requests[0].json["legs"] == "aleg"


async def test_plivo_transfer_needs_an_answer_url():
    async with PlivoFake(PL_ID, PL_TOKEN, calls={"c0ffee-uuid"}) as fake:
        with pytest.raises(CallControlNotSupported) as info:
            await PlivoControl(PL_ID, PL_TOKEN, base_url=fake.base_url).transfer(plivo_start(), "+15551234567")
    assert not fake.requests and "PLIVO_TRANSFER_URL" in str(info.value)
    assert isinstance(info.value, CallControlError) and isinstance(info.value, NotImplementedError)


def test_plivo_dial_xml():
    root = ET.fromstring(plivo_dial_xml("+1 555 123 4567"))
    assert root.tag == "Response" and root.find("Dial/Number").text == "15551234567"
    assert ET.fromstring(plivo_dial_xml("sip:a@b.example")).find("Dial/User").text == "sip:a@b.example"


async def test_plivo_bad_credentials():
    async with PlivoFake(PL_ID, PL_TOKEN, calls={"c0ffee-uuid"}) as fake:
        with pytest.raises(CallControlError) as info:
            await PlivoControl(PL_ID, "nope-token", base_url=fake.base_url).hangup(plivo_start())
    assert info.value.status == 401 and "Authentication credentials invalid" in info.value.message


# -- Vonage ---------------------------------------------------------------------------------------

async def test_vonage_hangup_and_transfer():
    u1, u2 = "63f61863-4a51-4f6b-86e1-46edebcf9356", "aaaaaaaa-0000-4000-8000-000000000002"
    async with VonageFake(VG_JWT, calls={u1, u2}) as fake:
        control = VonageControl(VG_JWT, base_url=fake.base_url)
        await control.transfer(vonage_start(u1), "+44 7700 900000")
        await control.transfer(vonage_start(u2), "sip:desk@sip.example.com")
    assert fake.transfers == [(u1, {"type": "phone", "number": "447700900000"}),
                              (u2, {"type": "sip", "uri": "sip:desk@sip.example.com"})]
    assert fake.requests[0].method == "PUT" and fake.requests[0].path == f"/v1/calls/{u1}"
    assert fake.requests[0].json["destination"]["type"] == "ncco"
    async with VonageFake(VG_JWT, calls={u1}) as fake:
        control = VonageControl(VG_JWT, base_url=fake.base_url)
        await control.hangup(vonage_start(u1))
        await control.hangup(vonage_start(u1))  # 404: already gone
    assert fake.calls[u1] == "completed" and fake.requests[0].json == {"action": "hangup"}


async def test_vonage_without_a_call_uuid():
    start = VonageCodec().parse(orjson.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=8000"}))
    with pytest.raises(CallControlError, match="no call id"):
        await VonageControl(VG_JWT, base_url="http://127.0.0.1:9").hangup(start)


async def test_vonage_bad_jwt():
    async with VonageFake(VG_JWT, calls={"u"}) as fake:
        with pytest.raises(CallControlError) as info:
            await VonageControl("expired.jwt.value", base_url=fake.base_url).hangup(vonage_start("u"))
    assert info.value.status == 401 and "You did not provide correct credentials" in info.value.message


# -- Exotel ---------------------------------------------------------------------------------------

async def test_exotel_hangup_and_transfer_through_the_legs_api():
    async with ExotelFake(EX_SID, EX_KEY, EX_TOKEN, calls={"leg-1", "exocall1"}) as fake:
        control = ExotelControl(EX_SID, EX_KEY, EX_TOKEN, exophone="08047491899", base_url=fake.base_url)
        await control.transfer(exotel_start(custom={"leg_sid": "leg-1"}), "+919876543210")
        await control.hangup(exotel_start())  # no leg_sid: the call_sid
    assert fake.transfers == [("leg-1", {"contactUri": "+919876543210", "exophone": "08047491899",
                                         "networkType": "pstn"})]
    assert fake.calls == {"leg-1": "transferred", "exocall1": "completed"}
    assert fake.requests[1].path == f"/v2/accounts/{EX_SID}/legs/exocall1/actions"


async def test_exotel_transfer_without_an_exophone_is_not_supported():
    with pytest.raises(CallControlNotSupported) as info:
        await ExotelControl(EX_SID, EX_KEY, EX_TOKEN, base_url="http://127.0.0.1:9").transfer(
            exotel_start(), "+919876543210")
    assert "EXOTEL_EXOPHONE" in str(info.value) and info.value.carrier == "exotel"


async def test_exotel_unknown_leg_and_bad_credentials():
    async with ExotelFake(EX_SID, EX_KEY, EX_TOKEN, calls={"leg-1"}) as fake:
        with pytest.raises(CallControlError) as info:
            await ExotelControl(EX_SID, EX_KEY, EX_TOKEN, base_url=fake.base_url).hangup(exotel_start("applet-call"))
        assert info.value.status == 404 and "Leg not found" in info.value.message
        with pytest.raises(CallControlError) as info:
            await ExotelControl(EX_SID, EX_KEY, "bad-token", base_url=fake.base_url).hangup(
                exotel_start(custom={"leg_sid": "leg-1"}))
    assert info.value.status == 401
    assert "Authentication failed" in info.value.message and "code 1010" in info.value.message


# -- common behaviour ------------------------------------------------------------------------------

def all_controls(base_url, **kw):
    return [TwilioControl(TW_SID, TW_TOKEN, base_url=base_url, **kw), TelnyxControl(TX_KEY, base_url=base_url, **kw),
            PlivoControl(PL_ID, PL_TOKEN, base_url=base_url, **kw), VonageControl(VG_JWT, base_url=base_url, **kw),
            ExotelControl(EX_SID, EX_KEY, EX_TOKEN, base_url=base_url, **kw)]


STARTS = {"twilio": twilio_start, "telnyx": telnyx_start, "plivo": plivo_start, "vonage": vonage_start,
          "exotel": exotel_start}


async def test_unreachable_host_is_a_typed_error_quickly():
    base = f"http://127.0.0.1:{refused_port()}"
    for control in all_controls(base, timeout=2.0):
        t0 = time.monotonic()
        with pytest.raises(CallControlError) as info:
            await control.hangup(STARTS[control.carrier]())
        assert time.monotonic() - t0 < 3.0
        e = info.value
        assert e.status is None and e.carrier == control.carrier and "connection failed" in e.message
        assert_no_secret(str(e), repr(e), repr(control))


async def test_server_that_never_answers_times_out():
    async with FakeServer(lambda r: Reply(200), hang=True) as srv:
        for control in all_controls(srv.base_url, timeout=0.3):
            t0 = time.monotonic()
            with pytest.raises(CallControlError) as info:
                await control.hangup(STARTS[control.carrier]())
            assert 0.25 < time.monotonic() - t0 < 3.0
            assert "no response within 0.3 s" in str(info.value)
            assert_no_secret(str(info.value))


async def test_chunked_responses_success_and_error():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1"}, chunked=True) as fake:
        await TwilioControl(TW_SID, TW_TOKEN, base_url=fake.base_url).transfer(twilio_start(), "+15551234567")
        with pytest.raises(CallControlError) as info:
            await TwilioControl(TW_SID, "bad-token", base_url=fake.base_url).hangup(twilio_start())
    # the error message came out of a chunked JSON body
    assert fake.calls["CA1"] == "transferred" and info.value.message == "Authenticate (code 20003)"
    async with TelnyxFake(TX_KEY, calls={"v3:c"}, chunked=True) as fake:
        with pytest.raises(CallControlError) as info:
            await TelnyxControl("bad", base_url=fake.base_url).hangup(telnyx_start("v3:c"))
    assert "Authentication failed" in info.value.message


async def test_secrets_echoed_by_a_carrier_are_scrubbed():
    def echo(req):
        return Reply(400, {"message": f"bad request with header {req.headers.get('authorization')} "
                                      f"and token {TW_TOKEN} and key {TX_KEY} and jwt {VG_JWT}"})
    async with FakeServer(echo) as srv:
        for control in all_controls(srv.base_url):
            with pytest.raises(CallControlError) as info:
                await control.hangup(STARTS[control.carrier]())
            assert info.value.status == 400
            # each control scrubs its own secrets (and a header it sent is never echoed verbatim either)
            header = next(iter(control._auth().values())).split()[-1]
            for secret in control._secrets() + (header,):
                assert secret not in str(info.value) and secret not in info.value.message
            assert "***" in info.value.message


def test_reprs_hold_no_secrets():
    controls = all_controls("https://api.example.com")
    controls.append(PlivoControl(PL_ID, PL_TOKEN, transfer_url="https://x/{to}"))
    controls.append(ExotelControl(EX_SID, EX_KEY, EX_TOKEN, exophone="0800"))
    for control in controls:
        assert_no_secret(repr(control), str(control))
    assert repr(controls[0]) == "TwilioControl(base_url='https://api.example.com')"


async def test_bad_destinations_are_refused_before_any_request():
    async with TwilioFake(TW_SID, TW_TOKEN, calls={"CA1"}) as fake:
        control = TwilioControl(TW_SID, TW_TOKEN, base_url=fake.base_url)
        for to in ("", "sales", "+1", "<Hangup/>", "+1555<Play>x</Play>", "tel:+1555", None, 5551234567):
            with pytest.raises(CallControlError, match="neither a phone number") as info:
                await control.transfer(twilio_start(), to)
            assert info.value.status is None and isinstance(info.value, RtfastError)
    assert not fake.requests


async def test_missing_call_id():
    with pytest.raises(CallControlError, match="no call id") as info:
        await TwilioControl(TW_SID, TW_TOKEN, base_url="http://127.0.0.1:9").hangup(Start(stream_id="MZ1"))
    assert info.value.action == "hangup"


async def test_control_for_reads_the_environment_and_base_override():
    assert control_for("twilio", environ={}) is None
    assert control_for("twilio", environ={"TWILIO_ACCOUNT_SID": TW_SID}) is None
    env = {"TWILIO_ACCOUNT_SID": TW_SID, "TWILIO_AUTH_TOKEN": TW_TOKEN, "TELNYX_API_KEY": TX_KEY,
           "PLIVO_AUTH_ID": PL_ID, "PLIVO_AUTH_TOKEN": PL_TOKEN, "PLIVO_TRANSFER_URL": "https://a/{to}",
           "VONAGE_JWT": VG_JWT, "EXOTEL_ACCOUNT_SID": EX_SID, "EXOTEL_API_KEY": EX_KEY,
           "EXOTEL_API_TOKEN": EX_TOKEN, "EXOTEL_EXOPHONE": "0800"}
    for name, cls in CONTROLS.items():
        control = control_for(name.upper(), environ=env)
        assert type(control) is cls and control.carrier == name
    assert control_for("plivo", environ=env).transfer_url == "https://a/{to}"
    assert control_for("exotel", environ=env).exophone == "0800"
    assert control_for("twilio", environ=env).base_url == "https://api.twilio.com"
    with pytest.raises(ValueError, match="unknown carrier"):
        control_for("skype", environ=env)
    http = HttpClient()
    async with TelnyxFake(TX_KEY, calls={"v3:e"}) as fake:
        control = control_for("telnyx", http=http, environ={**env, "RTFAST_TELNYX_API_BASE": fake.base_url + "/"})
        assert control.http is http
        await control.hangup(telnyx_start("v3:e"))
        await control.aclose()  # not ours: the shared client stays usable
        await http.request("GET", fake.base_url)
    assert fake.calls["v3:e"] == "completed"


async def test_a_swapped_http_client_is_used():
    class Recorder:
        def __init__(self):
            self.calls = []

        async def request(self, method, url, *, headers=None, body=None, timeout=10.0):
            from rtfast.http import HttpResponse
            self.calls.append((method, url, body, timeout))
            return HttpResponse(204, {}, b"")

        async def aclose(self):
            pass

    rec = Recorder()
    await VonageControl(VG_JWT, http=rec, timeout=3.0).hangup(vonage_start("u-1"))
    assert rec.calls == [("PUT", "https://api.nexmo.com/v1/calls/u-1", b'{"action":"hangup"}', 3.0)]


async def test_a_swapped_clients_own_errors_become_call_control_errors():
    class Broken:
        async def request(self, method, url, *, headers=None, body=None, timeout=10.0):
            raise OSError(f"proxy said no to {headers['Authorization']}")

        async def aclose(self):
            pass

    with pytest.raises(CallControlError) as info:
        await TelnyxControl(TX_KEY, http=Broken()).hangup(telnyx_start("v3:z"))
    assert info.value.status is None and info.value.message.startswith("OSError: proxy said no to Bearer ***")
    assert TX_KEY not in str(info.value)


async def test_plain_text_error_bodies():
    async with FakeServer(lambda r: Reply(502, b"<html>\n  <body>Bad   gateway</body>\n</html>")) as srv:
        with pytest.raises(CallControlError) as info:
            await VonageControl(VG_JWT, base_url=srv.base_url).transfer(vonage_start("u"), "+15551234567")
    assert info.value.status == 502 and info.value.message == "<html> <body>Bad gateway</body> </html>"


def test_constructors_refuse_missing_credentials():
    with pytest.raises(ValueError):
        TwilioControl(TW_SID, "")
    with pytest.raises(ValueError):
        TelnyxControl("")
    with pytest.raises(ValueError):
        PlivoControl(PL_ID, PL_TOKEN, transfer_method="PATCH")
    with pytest.raises(ValueError):
        VonageControl("")
    with pytest.raises(ValueError):
        ExotelControl(EX_SID, EX_KEY, "")


def test_errors_pickle():
    import pickle

    from rtfast.errors import HttpError
    e = pickle.loads(pickle.dumps(CallControlError("twilio", "hangup", 401, "Authenticate")))
    assert (e.carrier, e.action, e.status) == ("twilio", "hangup", 401)
    assert str(e) == "twilio hangup failed: HTTP 401: Authenticate"
    h = pickle.loads(pickle.dumps(HttpError("GET h:1: x", "h:1", "timeout")))
    assert (h.host, h.reason) == ("h:1", "timeout")
    n = pickle.loads(pickle.dumps(CallControlNotSupported("exotel", "transfer", None, "no")))
    assert type(n) is CallControlNotSupported and str(n) == "exotel transfer failed: no"
