"""Sans-I/O conversation logic of a phone agent, beside the audio of :class:`~rtfast.bridge.call.Call`.

The Call moves audio and handles barge-in; a :class:`Dialog` follows the
conversation's other events and says what to send back:

- tool calls: ``response.function_call_arguments.done`` becomes a
  :class:`ToolCall` event; :meth:`Dialog.tool_output` sends the
  ``function_call_output`` and, once no tool of the turn is still running and
  no response is active, one ``response.create`` (asking while a response is
  active is refused by the API, so it waits for ``response.done``);
- keypad digits (:meth:`Dialog.dtmf`): a user message the model can act on;
- :meth:`Dialog.say`: a response that speaks given words (used for the last
  sentence before a hang-up), :attr:`Dialog.said` tells when it is done;
- transcripts of both sides as :class:`Transcript` events;
- a bounded history (user and assistant transcripts, function calls and
  their outputs) that :meth:`Dialog.replay` re-creates on a new Realtime
  session after a reconnect, so the model keeps its context.

Nothing here runs per audio frame: audio deltas never reach a Dialog.
"""

from __future__ import annotations

from collections import deque

from rtfast.session import RealtimeSession

__all__ = ["Dialog", "ToolCall", "Transcript", "DEFAULT_DTMF_TEXT"]

#: How a keypad digit reaches the model by default.
DEFAULT_DTMF_TEXT = "The caller pressed {digit} on the phone keypad."

_USER_TRANSCRIPT = "conversation.item.input_audio_transcription.completed"
_ASSISTANT_TRANSCRIPT = ("response.output_audio_transcript.done", "response.audio_transcript.done")
_ASSISTANT_TEXT = ("response.output_text.done", "response.text.done")
_ASSISTANT_DELTA = ("response.output_audio_transcript.delta", "response.audio_transcript.delta",
                    "response.output_text.delta", "response.text.delta")
_CALL_DONE = "response.function_call_arguments.done"


class ToolCall:
    """The model called a function tool: run it and answer with
    :meth:`Dialog.tool_output` (``call_id``)."""

    __slots__ = ("call_id", "name", "arguments", "item_id", "response_id")

    def __init__(self, call_id: str, name: str, arguments: str, item_id=None, response_id=None) -> None:
        self.call_id, self.name, self.arguments = call_id, name, arguments
        self.item_id, self.response_id = item_id, response_id

    def __repr__(self) -> str:
        return f"ToolCall({self.name}({self.arguments}), call_id={self.call_id!r})"


class Transcript:
    """A completed transcript: ``role`` is ``"user"`` (the caller) or ``"assistant"``."""

    __slots__ = ("role", "text", "item_id")

    def __init__(self, role: str, text: str, item_id=None) -> None:
        self.role, self.text, self.item_id = role, text, item_id

    def __repr__(self) -> str:
        return f"Transcript({self.role}: {self.text!r})"


class Dialog:
    """The conversation state of one call (see the module's docstring).

    ``session``: the call's :class:`~rtfast.session.RealtimeSession` (frames are
    serialised through it, and it knows whether a response is active).
    ``history_items`` / ``history_chars``: how much conversation is kept to
    replay after a reconnect (the oldest goes first).
    """

    def __init__(self, session: RealtimeSession, *, dtmf_text: str = DEFAULT_DTMF_TEXT, history_items: int = 200,
                 history_chars: int = 60_000) -> None:
        self.session = session
        self.dtmf_text = dtmf_text
        self.running: dict[str, ToolCall] = {}        # tool calls not answered yet, by call_id
        self.want_response = False                    # a response.create is owed once the turn allows
        self._say: list[str] = []                     # words to speak once no response is active
        self._saying = 0                              # responses asked for by say() not yet created
        self._say_ids: set[str] = set()               # ... created, not yet done
        self.said = 0                                 # say() responses finished
        self.history: deque[dict] = deque()
        self._history_items, self._history_chars, self._chars = history_items, history_chars, 0
        self.tool_calls = 0
        self._names: dict[str, str] = {}              # function call item id -> tool name (beta)
        self._partial: dict[str, str] = {}            # assistant item id -> transcript so far

    # -- realtime events in -----------------------------------------------------------------
    def feed(self, ev, out: list, events: list) -> None:
        """Follow one parsed Realtime event (not an audio delta). Frames to send
        go to ``out``, application events to ``events``."""
        t = ev.type
        if t == _CALL_DONE:
            call = ToolCall(ev.call_id, getattr(ev, "name", None) or self._name_of(ev), ev.arguments,
                            getattr(ev, "item_id", None), getattr(ev, "response_id", None))
            if call.call_id in self.running:
                return                                # the same call announced twice
            self.running[call.call_id] = call
            self.tool_calls += 1
            self._remember({"type": "function_call", "call_id": call.call_id, "name": call.name,
                            "arguments": call.arguments})
            events.append(call)
        elif t == _USER_TRANSCRIPT:
            text = ev.transcript or ""
            if text:
                self._remember(_message("user", text, self.session.generation))
                events.append(Transcript("user", text, ev.item_id))
        elif t in _ASSISTANT_DELTA:
            # Kept until the item's transcript is done: a reply cut by a dropped
            # socket is replayed as far as it got.
            partial = self._partial
            if ev.item_id not in partial and len(partial) >= 8:
                del partial[next(iter(partial))]      # never finished (a barge-in): forget the oldest
            partial[ev.item_id] = partial.get(ev.item_id, "") + (ev.delta or "")
        elif t in _ASSISTANT_TRANSCRIPT or t in _ASSISTANT_TEXT:
            self._partial.pop(getattr(ev, "item_id", None), None)
            text = (getattr(ev, "transcript", None) if t in _ASSISTANT_TRANSCRIPT else getattr(ev, "text", None)) or ""
            if text:
                self._remember(_message("assistant", text, self.session.generation))
                events.append(Transcript("assistant", text, getattr(ev, "item_id", None)))
        elif t == "response.output_item.added":
            item = ev.item
            if getattr(item, "type", None) == "function_call":
                # The beta arguments.done event has no name: remember it from here.
                names = self._names
                if len(names) >= 64:
                    del names[next(iter(names))]
                names[item.id] = item.name
        elif t == "response.created":
            if self._saying:
                self._saying -= 1
                rid = getattr(ev.response, "id", None)
                if rid:
                    self._say_ids.add(rid)
        elif t == "response.done":
            rid = getattr(ev.response, "id", None)
            if rid in self._say_ids:
                self._say_ids.discard(rid)
                self.said += 1
            self._next(out)

    def _name_of(self, ev) -> str:
        return self._names.get(getattr(ev, "item_id", None), "")

    # -- the application's answers ------------------------------------------------------------
    def tool_output(self, call_id: str, output: str, out: list) -> None:
        """Answer a tool call; asks for the next response when the turn allows."""
        call = self.running.pop(call_id, None)
        if call is None:
            return                                    # unknown or answered already
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        self._remember(item)
        out.append(self.session.send({"type": "conversation.item.create", "item": item}))
        self.want_response = True
        self._next(out)

    def dtmf(self, digit: str, out: list) -> None:
        """A keypad digit, told to the model as a user message."""
        self.user_text(self.dtmf_text.format(digit=digit), out)

    def user_text(self, text: str, out: list) -> None:
        """Tell the model something as the user, and ask for a response."""
        item = _message("user", text, self.session.generation)
        self._remember(item)
        out.append(self.session.send({"type": "conversation.item.create", "item": item}))
        self.want_response = True
        self._next(out)

    def say(self, text: str, out: list) -> None:
        """Have the model speak ``text`` (after any response in progress)."""
        self._say.append(text)
        self._next(out)

    @property
    def saying(self) -> bool:
        """A say() response is waiting, being created or in progress."""
        return bool(self._say or self._saying or self._say_ids)

    def _next(self, out: list) -> None:
        """Ask for a response when one is owed and none is active."""
        if self.session.response_id is not None:
            return                                    # response.done brings us back here
        if self._say:
            text = self._say.pop(0)
            self._saying += 1
            out.append(self.session.send({"type": "response.create", "response": {
                "instructions": f"Say exactly this, word for word, and nothing else: {text}"}}))
            return
        if self.want_response and not self.running:
            self.want_response = False
            out.append(self.session.send({"type": "response.create"}))

    # -- reconnects ---------------------------------------------------------------------------
    def _remember(self, item: dict) -> None:
        history = self.history
        history.append(item)
        self._chars += _size(item)
        while history and (len(history) > self._history_items or self._chars > self._history_chars):
            self._chars -= _size(history.popleft())

    def replay(self, out: list) -> int:
        """The conversation so far as ``conversation.item.create`` frames for a
        new session (after its ``session.update``). Returns how many items.

        A function call whose output is still missing is replayed too: its
        output goes to the new session when the tool finishes. A response owed
        on the old session is asked for again."""
        for text in self._partial.values():           # replies the drop cut short, as far as they got
            if text:
                self._remember(_message("assistant", text, self.session.generation))
        self._partial.clear()
        n = 0
        for item in self.history:
            out.append(self.session.send({"type": "conversation.item.create", "item": item}))
            n += 1
        self._saying = 0
        self._say_ids.clear()
        if self.want_response or self._say:
            self._next(out)
        return n


def _message(role: str, text: str, generation: str) -> dict:
    if role == "user":
        kind = "input_text"
    else:
        kind = "output_text" if generation == "ga" else "text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def _size(item: dict) -> int:
    if item["type"] == "message":
        return len(item["content"][0]["text"])
    return len(item.get("arguments") or item.get("output") or "")
