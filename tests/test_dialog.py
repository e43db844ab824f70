"""rtfast.bridge.dialog.Dialog, sans I/O: server frames in, client frames and events out."""

import orjson
import pytest

from rtfast.bridge.dialog import Dialog, ToolCall, Transcript
from rtfast.session import RealtimeSession


class Driver:
    def __init__(self, generation="ga", **kw):
        self.session = RealtimeSession(generation)
        self.dialog = Dialog(self.session, **kw)
        self.n = 0

    def feed(self, type_, **fields):
        self.n += 1
        frame = orjson.dumps({"type": type_, "event_id": f"event_{self.n}", **fields})
        ev = self.session.receive(frame)
        out, events = [], []
        self.dialog.feed(ev, out, events)
        return [orjson.loads(f) for f in out], events

    def step(self, method, *args):
        out = []
        getattr(self.dialog, method)(*args, out)
        return [orjson.loads(f) for f in out]


def response(rid, status="in_progress"):
    return {"id": rid, "object": "realtime.response", "status": status, "output": []}


def call_done(d, call_id, name="get_weather", args='{"city":"Paris"}', rid="resp_1", item="item_f"):
    return d.feed("response.function_call_arguments.done", call_id=call_id, name=name, arguments=args,
                  item_id=item, output_index=0, response_id=rid)


def types(frames):
    return [f["type"] for f in frames]


def test_a_tool_call_is_answered_and_the_next_response_waits_for_the_active_one():
    d = Driver()
    d.feed("response.created", response=response("resp_1"))
    out, events = call_done(d, "call_1")
    assert out == [] and len(events) == 1 and isinstance(events[0], ToolCall)
    assert (events[0].call_id, events[0].name, events[0].arguments) == ("call_1", "get_weather", '{"city":"Paris"}')
    # answered while the response is still active: the output goes now, the response.create later
    out = d.step("tool_output", "call_1", '{"temperature": 21}')
    assert out == [{"type": "conversation.item.create", "item": {"type": "function_call_output",
                                                                  "call_id": "call_1", "output": '{"temperature": 21}'}}]
    out, _ = d.feed("response.done", response=response("resp_1", "completed"))
    assert types(out) == ["response.create"]
    assert d.step("tool_output", "call_1", "again") == []                 # answered once only


def test_several_calls_in_one_response_get_one_response_create_after_the_last():
    d = Driver()
    d.feed("response.created", response=response("resp_1"))
    call_done(d, "call_a", item="item_a")
    call_done(d, "call_b", name="get_time", args="{}", item="item_b")
    call_done(d, "call_b", name="get_time", args="{}", item="item_b")         # announced twice: one call
    assert sorted(d.dialog.running) == ["call_a", "call_b"]
    out, _ = d.feed("response.done", response=response("resp_1", "completed"))
    assert out == []                                                        # nothing owed yet
    assert types(d.step("tool_output", "call_b", "1")) == ["conversation.item.create"]   # call_a still runs
    assert types(d.step("tool_output", "call_a", "2")) == ["conversation.item.create", "response.create"]
    assert d.dialog.tool_calls == 2


def test_a_tool_call_after_a_barge_in_is_still_answered():
    d = Driver()
    d.feed("response.created", response=response("resp_1"))
    call_done(d, "call_1")
    d.feed("response.done", response=response("resp_1", "cancelled"))       # the caller spoke over it
    d.feed("response.created", response=response("resp_2"))                 # and the model answered that
    assert types(d.step("tool_output", "call_1", "x")) == ["conversation.item.create"]
    out, _ = d.feed("response.done", response=response("resp_2", "completed"))
    assert types(out) == ["response.create"]


def test_beta_names_come_from_the_output_item():
    d = Driver("beta")
    d.feed("response.created", response=response("resp_1"))
    d.feed("response.output_item.added", response_id="resp_1", output_index=0,
           item={"id": "item_f", "type": "function_call", "name": "lookup", "call_id": "call_1", "arguments": ""})
    _, events = d.feed("response.function_call_arguments.done", call_id="call_1", arguments="{}", item_id="item_f",
                       output_index=0, response_id="resp_1")
    assert events[0].name == "lookup"


def test_digits_and_text_reach_the_model_as_user_messages():
    d = Driver(dtmf_text="Key {digit} pressed.")
    out = d.step("dtmf", "5")
    assert out == [{"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "Key 5 pressed."}]}}, {"type": "response.create"}]
    d.feed("response.created", response=response("resp_1"))
    assert types(d.step("user_text", "hello")) == ["conversation.item.create"]   # the response waits
    out, _ = d.feed("response.done", response=response("resp_1", "completed"))
    assert types(out) == ["response.create"]


def test_say_speaks_after_the_active_response_and_reports_when_done():
    d = Driver()
    d.feed("response.created", response=response("resp_1"))
    assert d.step("say", "Goodbye!") == []
    assert d.dialog.saying
    out, _ = d.feed("response.done", response=response("resp_1", "completed"))
    assert types(out) == ["response.create"] and "Goodbye!" in out[0]["response"]["instructions"]
    d.feed("response.created", response=response("resp_2"))
    assert d.dialog.saying and d.dialog.said == 0
    d.feed("response.done", response=response("resp_2", "completed"))
    assert not d.dialog.saying and d.dialog.said == 1


def test_transcripts_become_events_and_history_and_replay_in_order():
    d = Driver()
    _, ev = d.feed("conversation.item.input_audio_transcription.completed", item_id="item_u", content_index=0,
                   transcript="What's the weather?", usage={"type": "duration", "seconds": 1.0})
    assert isinstance(ev[0], Transcript) and (ev[0].role, ev[0].text) == ("user", "What's the weather?")
    d.feed("response.created", response=response("resp_1"))
    call_done(d, "call_1")
    d.step("tool_output", "call_1", '{"temperature": 21}')
    d.feed("response.done", response=response("resp_1", "completed"))
    d.feed("response.created", response=response("resp_2"))
    _, ev = d.feed("response.output_audio_transcript.done", response_id="resp_2", item_id="item_a", output_index=0,
                   content_index=0, transcript="It is 21 degrees.")
    assert (ev[0].role, ev[0].text) == ("assistant", "It is 21 degrees.")
    # the next reply is cut by a dropped socket half way
    d.feed("response.output_audio_transcript.delta", response_id="resp_2", item_id="item_b", output_index=0,
           content_index=0, delta="Anything ")
    d.feed("response.output_audio_transcript.delta", response_id="resp_2", item_id="item_b", output_index=0,
           content_index=0, delta="else?")
    d.session = RealtimeSession("ga")                      # a new session: nothing active there
    d.dialog.session = d.session
    out = []
    n = d.dialog.replay(out)
    items = [orjson.loads(f)["item"] for f in out]
    assert n == 5 == len(items)
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message", "message"]
    assert items[0]["content"] == [{"type": "input_text", "text": "What's the weather?"}]
    assert items[1] == {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                        "arguments": '{"city":"Paris"}'}
    assert items[3] == {"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "It is 21 degrees."}]}
    assert items[4]["content"][0]["text"] == "Anything else?"


def test_replay_asks_again_for_a_response_owed_on_the_old_session():
    d = Driver("beta")
    d.feed("response.created", response=response("resp_1"))
    d.step("user_text", "hi")                                # owed once resp_1 is done; then the socket drops
    d.session = RealtimeSession("beta")
    d.dialog.session = d.session
    out = []
    d.dialog.replay(out)
    frames = [orjson.loads(f) for f in out]
    assert types(frames) == ["conversation.item.create", "response.create"]


@pytest.mark.parametrize("items,chars", [(3, 10_000), (100, 25)])
def test_history_is_bounded(items, chars):
    d = Driver(history_items=items, history_chars=chars)
    for i in range(50):
        d.step("user_text", f"message number {i:03d}")
    assert len(d.dialog.history) <= items
    assert sum(len(h["content"][0]["text"]) for h in d.dialog.history) <= chars
    assert d.dialog.history[-1]["content"][0]["text"] == "message number 049"


def test_defaults_digits_text_and_nothing_owed_at_first():
    d = Driver()
    assert d.step("dtmf", "5")[0]["item"]["content"][0]["text"] == "The caller pressed 5 on the phone keypad."
    fresh = Driver()
    fresh.feed("response.created", response=response("resp_1"))
    out, events = fresh.feed("response.done", response=response("resp_1", "completed"))
    assert out == [] and events == [] and not fresh.dialog.saying


def test_say_with_no_response_active_goes_at_once_and_before_an_owed_response():
    d = Driver()
    d.feed("response.created", response=response("resp_0"))
    d.step("user_text", "hi")                                # a response is owed ...
    d.step("say", "One moment.")                             # ... and words to say
    out, _ = d.feed("response.done", response=response("resp_0", "completed"))
    assert types(out) == ["response.create"] and "One moment." in out[0]["response"]["instructions"]
    d.feed("response.created", response=response("resp_1"))
    out, _ = d.feed("response.done", response=response("resp_1", "completed"))
    assert out == [{"type": "response.create"}] and d.dialog.said == 1
    idle = Driver()
    assert types(idle.step("say", "Hello.")) == ["response.create"]


@pytest.mark.parametrize("generation,done,delta,field", [
    ("ga", "response.output_audio_transcript.done", "response.output_audio_transcript.delta", "transcript"),
    ("beta", "response.audio_transcript.done", "response.audio_transcript.delta", "transcript"),
    ("ga", "response.output_text.done", "response.output_text.delta", "text"),
    ("beta", "response.text.done", "response.text.delta", "text")])
def test_every_generations_assistant_text_is_followed(generation, done, delta, field):
    d = Driver(generation)
    ids = dict(response_id="resp_1", output_index=0, content_index=0)
    d.feed(delta, item_id="item_b", delta="Half a ", **ids)          # a reply cut short
    d.feed(delta, item_id="item_a", delta="Hel", **ids)
    d.feed(delta, item_id="item_a", delta="lo", **ids)
    _, events = d.feed(done, item_id="item_a", **{field: "Hello"}, **ids)
    assert [(e.role, e.text, e.item_id) for e in events] == [("assistant", "Hello", "item_a")]
    assert repr(events[0]) == "Transcript(assistant: 'Hello')"
    out = []
    d.dialog.replay(out)
    texts = [orjson.loads(f)["item"]["content"][0] for f in out]
    kind = "output_text" if generation == "ga" else "text"
    assert texts == [{"type": kind, "text": "Hello"}, {"type": kind, "text": "Half a "}]   # each once
    out = []
    d.dialog.replay(out)                                    # a second drop: the partial is history now
    assert len(out) == 2
    _, events = d.feed(done, item_id="item_c", **{field: ""}, **ids)
    assert events == []                                     # an empty transcript is no event


def test_an_empty_user_transcript_is_no_event():
    d = Driver()
    _, ev = d.feed("conversation.item.input_audio_transcription.completed", item_id="item_u", content_index=0,
                   transcript="", usage={"type": "duration", "seconds": 0.1})
    assert ev == [] and not d.dialog.history


def test_tool_call_fields_and_repr():
    d = Driver()
    _, events = call_done(d, "call_1", rid="resp_9", item="item_9")
    call = events[0]
    assert (call.item_id, call.response_id) == ("item_9", "resp_9")
    assert repr(call) == "ToolCall(get_weather({\"city\":\"Paris\"}), call_id='call_1')"


def test_bounded_partials_and_names():
    d = Driver("beta")
    ids = dict(response_id="resp_1", output_index=0, content_index=0)
    for i in range(8):
        d.feed("response.audio_transcript.delta", item_id=f"item_{i}", delta=f"p{i}", **ids)
    d.feed("response.audio_transcript.delta", item_id="item_7", delta="+", **ids)   # a known one evicts nothing
    d.feed("response.audio_transcript.delta", item_id="item_7", delta="", **ids)    # an empty delta adds nothing
    assert list(d.dialog._partial.values()) == [f"p{i}" for i in range(7)] + ["p7+"]
    d.feed("response.audio_transcript.delta", item_id="item_8", delta="p8", **ids)  # a ninth: the oldest goes
    out = []
    d.dialog.replay(out)
    assert [orjson.loads(f)["item"]["content"][0]["text"] for f in out] == [f"p{i}" for i in range(1, 7)] + ["p7+", "p8"]
    for i in range(65):
        d.feed("response.output_item.added", response_id="resp_1", output_index=0,
               item={"id": f"f{i}", "type": "function_call", "name": f"tool{i}", "call_id": f"c{i}", "arguments": ""})
    _, first = d.feed("response.function_call_arguments.done", call_id="c0", arguments="{}", item_id="f0",
                      output_index=0, response_id="resp_1")
    _, second = d.feed("response.function_call_arguments.done", call_id="c1", arguments="{}", item_id="f1",
                       output_index=0, response_id="resp_1")
    _, unknown = d.feed("response.function_call_arguments.done", call_id="cx", arguments="{}", item_id="nope",
                        output_index=0, response_id="resp_1")
    assert (first[0].name, second[0].name, unknown[0].name) == ("", "tool1", "")


def test_history_defaults_and_exact_limits():
    d = Driver()
    for i in range(201):
        d.dialog._remember({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]})
    assert len(d.dialog.history) == 200
    d = Driver()
    big = "y" * 30_000
    for _ in range(2):
        d.step("user_text", big)
    assert len(d.dialog.history) == 2                        # exactly 60,000 characters fit
    d.step("user_text", "z")                                 # one more: the oldest goes
    assert [h["content"][0]["text"][0] for h in d.dialog.history] == ["y", "z"]
    d = Driver(history_chars=10)
    d.dialog._remember({"type": "function_call", "call_id": "c", "name": "n", "arguments": "0123456789"})
    d.dialog._remember({"type": "function_call_output", "call_id": "c", "output": "0"})
    assert [h["type"] for h in d.dialog.history] == ["function_call_output"]   # arguments and outputs count


def test_replay_forgets_say_responses_of_the_old_session():
    d = Driver()
    d.step("say", "Goodbye.")
    d.feed("response.created", response=response("resp_1"))
    assert d.dialog.saying
    d.session = RealtimeSession("ga")
    d.dialog.session = d.session
    d.dialog.replay([])
    assert not d.dialog.saying and d.dialog.said == 0


def test_replay_edges_roles_unsent_says_and_empty_arguments():
    d = Driver()
    d.feed("response.output_audio_transcript.delta", response_id="r", item_id="item_a", output_index=0,
           content_index=0, delta="Cut")
    out = []
    d.dialog.replay(out)
    assert orjson.loads(out[0])["item"]["role"] == "assistant"
    d = Driver()
    d.step("say", "Bye.")                                    # asked for, not yet created, when the socket drops
    assert d.dialog.saying
    d.session = RealtimeSession("ga")
    d.dialog.session = d.session
    d.dialog.replay([])
    assert not d.dialog.saying
    d = Driver(history_chars=3)
    d.dialog._remember({"type": "function_call", "call_id": "c", "name": "n", "arguments": ""})
    d.step("user_text", "abc")
    assert len(d.dialog.history) == 2                        # an empty call counts no characters
