"""Generate ``rtfast/_events_spec.py`` from the official ``openai`` package's pydantic models.

Run ``python tools/gen_events.py`` after upgrading ``openai``; it rewrites the spec
module and prints the event counts per generation. The spec is plain data: for
every event model and every model it reaches, its field names with the JSON kind
of each field (see the legend in the emitted module). ``rtfast/events.py``
builds slotted classes from it at import, so the runtime never imports ``openai``.
"""

from __future__ import annotations

import importlib
import keyword
import pkgutil
import pprint
import re
import sys
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import openai
import typing_extensions
from pydantic import BaseModel

from openai.types.beta.realtime import realtime_client_event as beta_client
from openai.types.beta.realtime import realtime_server_event as beta_server
from openai.types.beta.realtime.transcription_session import TranscriptionSession as BetaTranscriptionSession
from openai.types.realtime import realtime_client_event as ga_client
from openai.types.realtime import realtime_server_event as ga_server
from openai.types.realtime import realtime_translation_client_event as tr_client
from openai.types.realtime import realtime_translation_server_event as tr_server
from openai.types.live import client_event as live_client
from openai.types.live import connect_client_event as live_sideband_client
from openai.types.live import connect_server_event as live_sideband_server
from openai.types.live import fork_client_event as live_fork_client
from openai.types.live import server_event as live_server

OUT = Path(__file__).resolve().parent.parent / "rtfast" / "_events_spec.py"

GENERATIONS = {
    "ga": (ga_server.RealtimeServerEvent, ga_client.RealtimeClientEvent),
    "beta": (beta_server.RealtimeServerEvent, beta_client.RealtimeClientEvent),
    "translation": (tr_server.RealtimeTranslationServerEvent, tr_client.RealtimeTranslationClientEvent),
    # GPT-Live: the primary socket's unions, then the event types only the sideband (and fork)
    # sockets have (session.paused/resumed, transport.dtmf.send, fork.session.start), so one
    # registry parses every socket's frames.
    "live": (
        (live_server.ServerEvent, live_sideband_server.ConnectServerEvent),
        (live_client.ClientEvent, live_sideband_client.ConnectClientEvent, live_fork_client.ForkClientEvent),
    ),
}

# Where a spec class's name may have to be qualified: the beta models live in their own namespace,
# and so do the GPT-Live ones (and the models only GPT-Live events reach, e.g. openai.types.decision).
BETA_PREFIX = "openai.types.beta."
LIVE_PREFIX = "openai.types.live."
# Events the API sends that the official package does not type, declared here
# the way openai would (their spec origin starts with ADDED_ORIGIN).
ADDED_MODULE = "openai.types.beta.realtime.rtfast_added"
ADDED_ORIGIN = "+"


class TranscriptionSessionCreatedEvent(BaseModel):
    """Sent first on a beta transcription session (``intent=transcription``); the
    official types have only ``transcription_session.updated``. Same shape."""

    event_id: str
    session: BetaTranscriptionSession
    type: Literal["transcription_session.created"]


TranscriptionSessionCreatedEvent.__module__ = ADDED_MODULE

#: generation -> side -> added event models, appended after the official union's members.
ADDED = {"beta": {"server": [TranscriptionSessionCreatedEvent]}}
# Fields typed here instead of from the official annotation, by (official model, field).
# GPT-Live's response.item.create carries a Responses API input item: that union reaches ~60
# Responses models (one with a keyword field, ``async``) that are not part of the voice protocol,
# so the item stays a free-form object (a dict, round-tripped intact).
from openai.types.live.response_item_create_event import ResponseItemCreateEvent as _LiveResponseItemCreate  # noqa: E402

OVERRIDES = {(_LiveResponseItemCreate, "item"): "d!"}
SCALARS = {str: "s", int: "i", float: "f", bool: "b", object: "a", Any: "a"}
RESERVED = {"to_dict", "_extra"}  # names the runtime classes use themselves


def union_members(tp: Any) -> tuple[Any, ...]:
    """The members of a (possibly Annotated) union, ``None`` dropped."""
    tp = strip(tp)
    return tuple(a for a in get_args(tp) if a is not type(None))


def strip(tp: Any) -> Any:
    """Remove Annotated and TypeAliasType wrappers."""
    while True:
        if hasattr(tp, "__value__"):
            tp = tp.__value__
        elif get_origin(tp) in (typing.Annotated, typing_extensions.Annotated):
            tp = get_args(tp)[0]
        else:
            return tp


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def literal_values(tp: Any) -> tuple | None:
    """The values of a Literal (through Optional), else None."""
    tp = strip(tp)
    if get_origin(tp) is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return None
        tp = strip(args[0])
    return get_args(tp) if get_origin(tp) is Literal else None


class Collector:
    def __init__(self) -> None:
        self.models: dict[type, dict[str, str]] = {}  # model -> {field: kind}
        self.unions: dict[tuple, tuple] = {}  # member tuple -> (discriminator, mapping)
        self.union_names: dict[tuple, str] = {}
        self.names: dict[type, str] = {}
        self.first_gen: dict[type, str] = {}  # model -> the generation that reached it first
        self.gen = ""
        self._alias_names = self._find_aliases()

    @staticmethod
    def _find_aliases() -> dict[tuple, str]:
        """Module-level union aliases (``ConversationItem = Annotated[Union[...]]``) by member tuple."""
        found: dict[tuple, str] = {}
        for pkg in ("openai.types.realtime", "openai.types.beta.realtime", "openai.types.responses", "openai.types.live"):
            mod = importlib.import_module(pkg)
            for info in pkgutil.iter_modules(mod.__path__):
                sub = importlib.import_module(f"{pkg}.{info.name}")
                for name, value in vars(sub).items():
                    if name.startswith("_") or is_model(value):
                        continue
                    members = tuple(m for m in union_members(value) if is_model(m)) if get_origin(strip(value)) is Union else ()
                    if len(members) > 1 and members not in found:
                        found[members] = namespace_of_module(pkg + ".") + name
        return found

    def model(self, m: type) -> None:
        if m in self.models:
            return
        self.models[m] = {}  # placeholder against recursion
        self.first_gen[m] = self.gen
        fields = {}
        for name, f in m.model_fields.items():
            api = f.alias or name
            if keyword.iskeyword(api) or api in RESERVED or not api.isidentifier():
                raise SystemExit(f"{m.__module__}.{m.__name__}: field {api!r} needs special handling")
            override = OVERRIDES.get((m, api))
            if override is not None:
                fields[api] = override
                continue
            kind = self.kind(f.annotation)
            lit = literal_values(f.annotation)
            if f.is_required() and lit is not None and len(lit) == 1 and isinstance(lit[0], str):
                kind = "=" + lit[0]  # a constant, e.g. the event type: defaulted by the constructor
            elif f.is_required():
                kind += "!"
            fields[api] = kind
        self.models[m] = fields

    def kind(self, tp: Any) -> str:
        tp = strip(tp)
        origin = get_origin(tp)
        if origin is Union:
            members = union_members(tp)
            models = tuple(a for a in map(strip, members) if is_model(a))
            scalars = [a for a in members if not is_model(strip(a))]
            parts = []
            for s in scalars:
                k = self.kind(s)
                if k not in parts:
                    parts.append(k)
            if len(models) == 1:
                self.model(models[0])
                parts.append("@" + self.ref(models[0]))
            elif models:
                parts.append("%" + self.union(models))
            return "|".join(parts)
        if origin is Literal:
            kinds = {SCALARS[type(v)] for v in get_args(tp)}
            if len(kinds) != 1:
                raise SystemExit(f"mixed literal {tp!r}")
            return kinds.pop()
        if origin is list:
            (inner,) = get_args(tp)
            k = self.kind(inner)
            if k[0] in "@%":
                return "[" + k
            if "@" in k or "%" in k or "[" in k:
                raise SystemExit(f"unsupported list element {inner!r}")
            return "l"
        if origin is dict:
            if any(is_model(strip(a)) for a in get_args(tp)):
                raise SystemExit(f"unsupported dict of models {tp!r}")
            return "d"
        if is_model(tp):
            self.model(tp)
            return "@" + self.ref(tp)
        if tp in SCALARS:
            return SCALARS[tp]
        raise SystemExit(f"unsupported annotation {tp!r}")

    def ref(self, m: type) -> str:
        """Placeholder reference, resolved to a class name once all models are known."""
        return f"<{id(m)}>"

    def union(self, models: tuple[type, ...]) -> str:
        if models not in self.unions:
            for m in models:
                self.model(m)
            self.unions[models] = self.discriminate(models, "type")
        return "<u" + str(list(self.unions).index(models)) + ">"

    def discriminate(self, models: tuple[type, ...], field: str, seen=()) -> tuple:
        """(field, {value: model or nested (field, mapping)}); a member whose field is optional is the default."""
        groups: dict[Any, list[type]] = {}
        for m in models:
            info = m.model_fields.get(field)
            values = literal_values(info.annotation) if info is not None else None
            if values is None:
                raise SystemExit(f"union {models} has no literal {field!r} on {m.__name__}")
            for v in values:
                groups.setdefault(v, []).append(m)
            if not info.is_required():
                groups.setdefault(None, []).append(m)
        mapping = {}
        for value, group in groups.items():
            if len(group) == 1 or value is None:  # no discriminator: the first member, as openai does
                mapping[value] = group[0]
            else:  # several members share a value (the message roles): discriminate again
                sub = next(
                    (f for f in group[0].model_fields if f not in seen + (field,) and all(literal_values(g.model_fields[f].annotation) if f in g.model_fields else None for g in group)),
                    None,
                )
                if sub is None:
                    raise SystemExit(f"cannot discriminate {group}")
                mapping[value] = self.discriminate(tuple(group), sub, seen + (field,))
        return (field, mapping)

    # -- naming ---------------------------------------------------------------------------------

    @staticmethod
    def module_stem(m: type) -> str:
        return "".join(w.capitalize() for w in m.__module__.rsplit(".", 1)[1].split("_"))

    def assign_names(self, events: set[type]) -> None:
        by_ns: dict[str, dict[str, list[type]]] = {}
        for m in self.models:
            ns = namespace_of_module(m.__module__) or ("live." if self.first_gen[m] == "live" else "")
            by_ns.setdefault(ns, {}).setdefault(m.__name__, []).append(m)
        for ns, names in by_ns.items():
            taken = set()
            for name, ms in names.items():
                if len(ms) == 1:
                    self.names[ms[0]] = ns + name
                    taken.add(name)
            for name, ms in names.items():
                if len(ms) == 1:
                    continue
                n_events = sum(m in events for m in ms)
                for m in ms:
                    # the module's main class keeps its name; helpers get the module's name in front,
                    # and so do events that share a name (GPT-Live's transport.dtmf.send, one per side)
                    keep = self.module_stem(m) == name or (m in events and n_events == 1)
                    full = name if keep else self.module_stem(m) + name
                    if full in taken:
                        raise SystemExit(f"name clash {ns}{full}")
                    taken.add(full)
                    self.names[m] = ns + full
        used = set(self.names.values())
        for members in self.unions:
            name = self._alias_names.get(members)
            if name is None or name in used:
                # the first member's name, else the first free one of the others' (GPT-Live has three
                # delegation unions, each led by ClientDelegation)
                name = next(n for n in (self.names[m] + "Union" for m in members) if n not in used)
            used.add(name)
            self.union_names[members] = name

    def resolve(self, kind: str) -> str:
        def sub(match: re.Match) -> str:
            token = match.group(1)
            if token.startswith("u"):
                return self.union_names[list(self.unions)[int(token[1:])]]
            return self.names[next(m for m in self.models if id(m) == int(token))]

        return re.sub(r"<(u?\d+)>", sub, kind)


def namespace_of_module(module: str) -> str:
    return "beta." if module.startswith(BETA_PREFIX) else "live." if module.startswith(LIVE_PREFIX) else ""


def events_of(unions: Any) -> list[type]:
    """The members of a union, or of several (later ones add only event types not seen yet)."""
    if not isinstance(unions, tuple):
        return list(union_members(unions))
    out, seen = [], set()
    for union in unions:
        for m in union_members(union):
            t = literal_values(m.model_fields["type"].annotation)[0]
            if t not in seen:
                seen.add(t)
                out.append(m)
    return out


def emit_mapping(c: Collector, mapping: tuple) -> tuple:
    field, values = mapping
    return (field, {v: (c.names[t] if is_model(t) else emit_mapping(c, t)) for v, t in values.items()})


def render() -> tuple[str, dict]:
    """The spec module's text and the event counts per generation."""
    c = Collector()
    events: dict[str, dict[str, list[type]]] = {}
    for gen, (server, client) in GENERATIONS.items():
        c.gen = gen
        events[gen] = {"server": events_of(server), "client": events_of(client)}
        for side, extra in ADDED.get(gen, {}).items():
            events[gen][side] += extra
        for side in events[gen].values():
            for m in side:
                c.model(m)
    all_events = {m for g in events.values() for side in g.values() for m in side}
    c.assign_names(all_events)

    classes = {}
    for m, fields in sorted(c.models.items(), key=lambda kv: c.names[kv[0]]):
        origin = m.__module__.removeprefix("openai.types.") + "." + m.__qualname__
        if m.__module__ == ADDED_MODULE:
            origin = ADDED_ORIGIN + m.__qualname__
        classes[c.names[m]] = (origin, {f: c.resolve(k) for f, k in fields.items()})
    unions = {c.union_names[ms]: emit_mapping(c, d) for ms, d in sorted(c.unions.items(), key=lambda kv: c.union_names[kv[0]])}
    gens = {g: {side: [c.names[m] for m in ms] for side, ms in sides.items()} for g, sides in events.items()}

    counts = {g: {side: len(ms) for side, ms in sides.items()} for g, sides in gens.items()}
    header = f'''"""Realtime event spec, generated by tools/gen_events.py from openai=={openai.__version__}. Do not edit.

CLASSES: name -> (official origin, {{json field: kind}}); an origin "+Name" is an event the API
sends that the official types lack, added by the generator (see ADDED there).
Kinds: s str, i int, f number, b bool, a any JSON value, l list of scalars, d free-form object;
@Name a nested class, %Name a union by discriminator (see UNIONS), [X a list of X,
A|B either, =value a constant string (the event type), trailing ! a required field.
UNIONS: name -> (discriminator field, {{value: class name or nested (field, mapping)}});
the value None names the member chosen when the discriminator is absent (the first optional one).
EVENTS: generation -> side -> event class names, in the official union's order.
Counts: {counts}
"""

'''
    body = (
        "CLASSES = " + pprint.pformat(classes, width=120, sort_dicts=False) + "\n\n"
        "UNIONS = " + pprint.pformat(unions, width=120, sort_dicts=False) + "\n\n"
        "EVENTS = " + pprint.pformat(gens, width=120, sort_dicts=False) + "\n"
    )
    return header + body, counts


def main() -> None:
    text, counts = render()
    OUT.write_text(text)
    print(f"wrote {OUT}")
    for g, sides in counts.items():
        print(f"  {g}: {sides['client']} client, {sides['server']} server events")


if __name__ == "__main__":
    sys.exit(main())
