"""Typed OpenAI voice events: every client and server event of Realtime GA, beta, translation and GPT-Live.

One slotted class per event type and per nested object, built at import from the
spec in ``rtfast/_events_spec.py`` (generated from the official ``openai`` package's
models by ``tools/gen_events.py``; ``openai`` is not imported at run time). Class and
field names are the official ones, so ``event.response.usage.total_tokens`` and
``event.item.content[0].transcript`` work as with the official client. Beta classes
live in ``rtfast.events.beta``, translation classes also in ``rtfast.events.translation``, GPT-Live
classes (``openai.types.live``) in ``rtfast.events.live``.

Semantics, mirroring the official models built with ``exclude_unset``:

- a field that is absent reads as ``None``; ``to_dict()`` emits only the fields that
  were present (an explicit JSON ``null`` is remembered and emitted again);
- unknown fields are kept (readable as attributes, emitted by ``to_dict()``);
- an unknown event type parses to :class:`UnknownEvent`, an unknown nested object
  (say a new item type) to :class:`UnknownObject`, both keeping the raw dict;
- a frame that is not a JSON object, has no string ``type``, or has a field of the
  wrong JSON kind (``"output_index": "x"``, ``"item": 5``) raises
  :class:`rtfast.ProtocolError` naming the field. Only JSON kinds are checked, not
  enum values or required fields: the API adds values over time.

Constructors take keyword arguments (nested objects may be given as dicts, which
are converted and checked); unknown keywords are kept as extra fields. Passing
``None`` sends JSON ``null`` (e.g. ``turn_detection=None`` turns VAD off).
"""

from __future__ import annotations

import sys
import types
import typing
from operator import attrgetter

import orjson

from rtfast._events_spec import CLASSES, EVENTS, UNIONS
from rtfast.errors import ProtocolError

__all__ = [
    "parse",
    "parse_client",
    "dumps",
    "Model",
    "FieldInfo",
    "Event",
    "ServerEvent",
    "ClientEvent",
    "UnknownEvent",
    "UnknownObject",
    "GENERATIONS",
    "SERVER_EVENTS",
    "CLIENT_EVENTS",
    "GA_SERVER_EVENTS",
    "GA_CLIENT_EVENTS",
    "BETA_SERVER_EVENTS",
    "BETA_CLIENT_EVENTS",
    "TRANSLATION_SERVER_EVENTS",
    "TRANSLATION_CLIENT_EVENTS",
    "LIVE_SERVER_EVENTS",
    "LIVE_CLIENT_EVENTS",
    "session_update_g711",
    "input_audio_buffer_append",
    "response_create",
    "conversation_item_create_text",
    "conversation_item_truncate",
    "function_call_output",
]

GENERATIONS = ("ga", "beta", "translation", "live")


class _Bad(Exception):
    """A field of the wrong JSON kind; turned into ProtocolError where the frame is known."""


class Model:
    """Base of every event and nested object class.

    Each subclass has one slot per field of the official model plus ``_extra``: a dict
    of unknown fields and explicit nulls, or None.
    """

    __slots__ = ("_extra",)
    _fields: tuple[str, ...] = ()
    _order: tuple[str, ...] = ()        # the official declaration order (model_dump's key order)
    _known: frozenset = frozenset()
    _kinds: dict[str, str] = {}         # field -> spec kind, for model_fields
    _key = attrgetter("_extra")

    def _to_dict(self) -> dict:
        """The wire dict: set fields (``type`` first), then extra keys. Generated per class."""
        raise NotImplementedError

    # -- the official models' serialisation API (pydantic's names and results; not the hot path) --

    def to_dict(self, *, mode: str = "python", use_api_names: bool = True, exclude_unset: bool = True,
                exclude_defaults: bool = False, exclude_none: bool = False, warnings: bool | str = True) -> dict:
        """The JSON object, as the official model's ``to_dict()``: by default only the fields that
        were set (explicit nulls included) and unknown keys. Keys are the API's (there are no aliases)."""
        _check_mode(mode)
        if exclude_unset is True and not exclude_defaults and not exclude_none:
            return self._to_dict()      # the generated fast path: same keys and values
        return self._dump(exclude_unset, exclude_defaults, exclude_none, None, None)

    def to_json(self, *, indent: int | None = 2, use_api_names: bool = True, exclude_unset: bool = True,
                exclude_defaults: bool = False, exclude_none: bool = False, warnings: bool | str = True) -> str:
        """JSON text as the official ``to_json()`` writes it (indent 2, set fields only, by default)."""
        return _json_text(self._dump(exclude_unset, exclude_defaults, exclude_none, None, None), indent, False)

    def model_dump(self, *, mode: str = "python", include=None, exclude=None, by_alias: bool | None = None,
                   exclude_unset: bool = False, exclude_defaults: bool = False, exclude_none: bool = False,
                   warnings: bool | str = True, **unsupported) -> dict:
        """pydantic's ``model_dump``: every field (unset ones as None) in the official order, then
        unknown keys; ``include``/``exclude`` take sets or nested dicts of names (list indexes and
        ``"__all__"`` for lists). Other pydantic keywords raise TypeError unless at their default."""
        _check_mode(mode)
        _check_unsupported("model_dump", unsupported)
        return self._dump(exclude_unset, exclude_defaults, exclude_none, _norm(include), _norm(exclude))

    def model_dump_json(self, *, indent: int | None = None, ensure_ascii: bool = False, include=None, exclude=None,
                        by_alias: bool | None = None, exclude_unset: bool = False, exclude_defaults: bool = False,
                        exclude_none: bool = False, warnings: bool | str = True, **unsupported) -> str:
        """pydantic's ``model_dump_json`` (compact unless ``indent``), with ``model_dump``'s keywords."""
        _check_unsupported("model_dump_json", unsupported)
        data = self._dump(exclude_unset, exclude_defaults, exclude_none, _norm(include), _norm(exclude))
        return _json_text(data, indent, ensure_ascii)

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> Model:
        """pydantic's ``model_copy``: a shallow (or ``deep``) copy; ``update`` values are set as given,
        without checks (as pydantic does), and count as set; unknown keys become extra fields."""
        new = object.__new__(type(self))
        for name in self._fields:
            value = getattr(self, name)
            setattr(new, name, _deep(value) if deep else value)
        extra = self._extra
        new._extra = None if extra is None else (_deep(extra) if deep else dict(extra))
        if update:
            for key, value in update.items():
                if key in self._known:
                    setattr(new, key, value)
                    if value is None:
                        new._extra = {**(new._extra or {}), key: None}    # an explicit null is "set"
                    elif new._extra is not None and key in new._extra:
                        del new._extra[key]
                else:
                    new._extra = {**(new._extra or {}), key: value}
            if isinstance(new, _Raw) is False and new._extra == {}:
                new._extra = None
        return new

    def __copy__(self) -> Model:
        return self.model_copy()

    def __deepcopy__(self, memo: dict) -> Model:
        return self.model_copy(deep=True)

    @property
    def model_fields_set(self) -> set[str]:
        """Names of the fields that were set (explicit nulls included) and of unknown keys."""
        extra = self._extra or {}
        return {n for n in self._fields if getattr(self, n) is not None} | set(extra)

    @property
    def model_extra(self) -> dict | None:
        """Unknown keys and their values (pydantic's ``model_extra``)."""
        extra = self._extra or {}
        return {k: v for k, v in extra.items() if k not in self._known}

    def _dump(self, unset: bool, defaults: bool, none: bool, inc: dict | None, exc: dict | None) -> dict:
        extra = self._extra
        out = {}
        for name in self._order:
            sub_inc, sub_exc = _sub(inc, exc, name)
            if sub_inc is _SKIP or sub_exc is _SKIP:
                continue
            v = getattr(self, name)
            if v is None:
                # every official default is None: exclude_defaults drops what exclude_none drops
                if none or defaults or (unset and (extra is None or name not in extra)):
                    continue
                out[name] = None
            else:
                out[name] = _dv(v, unset, defaults, none, sub_inc, sub_exc)
        if extra:
            known = self._known
            for k, v in extra.items():
                if k in known or (v is None and none):
                    continue
                sub_inc, sub_exc = _sub(inc, exc, k)
                if sub_inc is not _SKIP and sub_exc is not _SKIP:
                    out[k] = _dv(v, unset, defaults, none, sub_inc, sub_exc)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Model:
        """Build from a decoded JSON object, with the same checks as :func:`parse`."""
        if type(data) is not dict:
            raise ProtocolError(f"{cls.__name__}: expected an object", _excerpt(data))
        try:
            return cls._parse(data)
        except _Bad as exc:
            raise ProtocolError(str(exc), _excerpt(data)) from None

    def __getattr__(self, name: str):
        # Only reached for names that are not fields: unknown keys read like pydantic extras.
        if name != "_extra":
            extra = self._extra
            if extra is not None and name in extra:
                return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        key = self._key  # an attrgetter over the slots (not a method: no binding)
        return key(self) == key(other)

    __hash__ = None  # mutable, like the official models

    def __repr__(self) -> str:
        parts = [f"{k}={getattr(self, k)!r}" for k in self._fields if getattr(self, k) is not None]
        if self._extra:
            # unknown keys, and the explicit nulls of known fields (the list above skips None);
            # not a known field set after parsing (the list above has it)
            parts += [f"{k}={v!r}" for k, v in self._extra.items()
                      if k not in self._known or (v is None and getattr(self, k) is None)]
        return f"{type(self).__name__}({', '.join(parts)})"


class FieldInfo:
    """What ``model_fields`` maps each field name to: the basics of pydantic's ``FieldInfo``."""

    __slots__ = ("annotation", "default", "alias", "kind", "_required")

    def __init__(self, annotation, required: bool, kind: str) -> None:
        self.annotation, self.default, self.alias, self.kind, self._required = annotation, None, None, kind, required

    def is_required(self) -> bool:
        return self._required

    def __repr__(self) -> str:
        return f"FieldInfo(annotation={self.annotation!r}, required={self._required})"


class _ModelFields:
    """``Model.model_fields`` on the class (as pydantic has it): name -> FieldInfo, official order."""

    def __get__(self, obj, cls):
        cached = cls.__dict__.get("_model_fields")
        if cached is None:
            cached = {name: _field_info(kind) for name, kind in cls._kinds.items()}
            cls._model_fields = cached
        return cached


_SCALAR_TYPES = {"s": str, "i": int, "f": float, "b": bool, "a": object, "l": list, "d": dict}


def _ref_type(ref: str):
    if ref[0] == "@":
        return _CLASSES[ref[1:]]
    members = []

    def walk(mapping):
        for target in mapping.values():
            if isinstance(target, str):
                if _CLASSES[target] not in members:
                    members.append(_CLASSES[target])
            else:
                walk(target[1])

    walk(UNIONS[ref[1:]][1])
    return typing.Union[tuple(members)] if len(members) > 1 else members[0]


def _field_info(kind: str) -> FieldInfo:
    f = _Field("", kind)
    if f.const is not None:
        return FieldInfo(typing.Literal[f.const], True, kind)
    parts = [_SCALAR_TYPES[k] for k in f.scalars]
    if f.dict_ref:
        parts.append(_ref_type(f.dict_ref))
    if f.list_ref:
        parts.append(typing.List[_ref_type(f.list_ref)])  # noqa: UP006
    annotation = typing.Union[tuple(parts)] if len(parts) > 1 else parts[0]
    return FieldInfo(annotation if f.required else typing.Optional[annotation], f.required, kind)


Model.model_fields = _ModelFields()


class Event(Model):
    """Base of every event; ``TYPE`` is the class's event type string."""

    __slots__ = ()
    TYPE: str = ""


class ServerEvent(Event):
    """An event the server sends."""

    __slots__ = ()


class ClientEvent(Event):
    """An event the client sends."""

    __slots__ = ()


class _Raw(Model):
    """A JSON object kept as is: every key reads as an attribute, ``to_dict()`` gives it back."""

    __slots__ = ()

    def __init__(self, data: dict) -> None:
        self._extra = data

    @classmethod
    def _parse(cls, data: dict) -> Model:
        return cls(data)

    @property
    def type(self):
        return self._extra.get("type")

    def _to_dict(self) -> dict:
        return {k: _td(v) for k, v in self._extra.items()}

    def _dump(self, unset: bool, defaults: bool, none: bool, inc: dict | None, exc: dict | None) -> dict:
        out = {}
        for k, v in self._extra.items():
            if v is None and none:
                continue
            sub_inc, sub_exc = _sub(inc, exc, k)
            if sub_inc is not _SKIP and sub_exc is not _SKIP:
                out[k] = _dv(v, unset, defaults, none, sub_inc, sub_exc)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extra!r})"


class UnknownObject(_Raw):
    """A nested object whose discriminator (``type``) names a variant this version does not know."""

    __slots__ = ()


class UnknownEvent(_Raw, ServerEvent, ClientEvent):
    """An event type this version does not know, passed through intact (``raw`` is the dict)."""

    __slots__ = ()

    @property
    def raw(self) -> dict:
        return self._extra


# -- helpers the generated code calls ------------------------------------------------------------

_U = object()  # "argument not given", distinct from an explicit None (JSON null)

_KIND_NAMES = {"a": "any value", "s": "string", "i": "integer", "f": "number", "b": "boolean", "l": "array", "d": "object"}
_KIND_TYPES = {"s": (str,), "i": (int,), "f": (int, float), "b": (bool,), "l": (list,), "d": (dict,)}
_JSON_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def _excerpt(data: object) -> bytes:
    try:
        return orjson.dumps(data)
    except TypeError:
        return repr(data).encode()


def _bad(cls: str, field: str, want: str, value: object) -> None:
    raise _Bad(f"field {cls}.{field}: expected {want}, got {_JSON_NAMES.get(type(value), type(value).__name__)}")


def _extras(d: dict, known: frozenset) -> dict:
    return {k: v for k, v in d.items() if v is None or k not in known}


def _plist(parse, value: list, cls: str, field: str) -> list:
    out = []
    for x in value:
        if type(x) is not dict:
            _bad(cls, field + "[]", "object", x)
        out.append(parse(x))
    return out


def _td(v):
    if isinstance(v, Model):
        return v._to_dict()
    if type(v) is list:
        return [_td(x) for x in v]
    return v


# -- model_dump machinery (cold path) -------------------------------------------------------------

_SKIP = object()   # include/exclude: leave this key out
_UNSUPPORTED = {"context": None, "exclude_computed_fields": False, "round_trip": False, "fallback": None,
                "serialize_as_any": False}


def _check_mode(mode: str) -> None:
    if mode not in ("python", "json"):
        raise ValueError(f"mode must be 'python' or 'json', not {mode!r}")


def _check_unsupported(method: str, kwargs: dict) -> None:
    for key, value in kwargs.items():
        if key not in _UNSUPPORTED:
            raise TypeError(f"{method}() got an unexpected keyword argument {key!r}")
        if value != _UNSUPPORTED[key]:
            raise TypeError(f"{method}({key}=...) is not supported by rtfast events "
                            f"(only the default {_UNSUPPORTED[key]!r}); the events are not pydantic models")


def _norm(spec):
    """include/exclude as pydantic takes them (a set, or a dict of name -> True/.../nested) -> dict."""
    if spec is None:
        return None
    if isinstance(spec, (set, frozenset, list, tuple)):
        return dict.fromkeys(spec, True)
    if isinstance(spec, dict):
        return {k: True if v is True or v is ... else _norm(v) for k, v in spec.items()}
    raise TypeError(f"include/exclude must be a set or a dict, not {type(spec).__name__}")


def _sub(inc: dict | None, exc: dict | None, key) -> tuple:
    """(nested include, nested exclude) for one key, or _SKIP where the key is left out."""
    if inc is None:
        sub_inc = None
    else:
        sub_inc = inc.get(key, inc.get("__all__", _SKIP))
        if sub_inc is True:
            sub_inc = None
    if exc is None:
        sub_exc = None
    else:
        sub_exc = exc.get(key, exc.get("__all__"))
        if sub_exc is True:
            sub_exc = _SKIP
    return sub_inc, sub_exc


def _dv(v, unset: bool, defaults: bool, none: bool, inc, exc):
    if isinstance(v, Model):
        return v._dump(unset, defaults, none, inc, exc)
    t = type(v)
    if t is list:
        if inc is None and exc is None:
            return [_dv(x, unset, defaults, none, None, None) for x in v]
        out = []
        for i, x in enumerate(v):
            sub_inc, sub_exc = _sub(inc, exc, i)
            if sub_inc is not _SKIP and sub_exc is not _SKIP:
                out.append(_dv(x, unset, defaults, none, sub_inc, sub_exc))
        return out
    if t is dict:
        out = {}
        for k, x in v.items():
            sub_inc, sub_exc = _sub(inc, exc, k)
            if sub_inc is not _SKIP and sub_exc is not _SKIP:
                out[k] = _dv(x, unset, defaults, none, sub_inc, sub_exc)
        return out
    return v


def _deep(v):
    if isinstance(v, Model):
        return v.model_copy(deep=True)
    t = type(v)
    if t is list:
        return [_deep(x) for x in v]
    if t is dict:
        return {k: _deep(x) for k, x in v.items()}
    return v


def _json_text(data: dict, indent: int | None, ensure_ascii: bool) -> str:
    """JSON as pydantic writes it: compact separators, or ``indent`` spaces with ": "."""
    if not ensure_ascii:
        if indent is None:
            return orjson.dumps(data).decode()
        if indent == 2:
            return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    import json

    return json.dumps(data, indent=indent, ensure_ascii=ensure_ascii,
                      separators=(",", ":") if indent is None else (",", ": "))


def _merge(out: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if out.get(k) is None:
            out[k] = _td(v)
    return out


def _coerce(parse, value, cls: str, field: str):
    """Constructor path: turn dicts (or lists of dicts) given for a nested field into objects."""
    try:
        if type(value) is dict:
            return parse(value)
        return [parse(x) if type(x) is dict else x for x in value]
    except _Bad as exc:
        raise ProtocolError(str(exc), _excerpt(value)) from None


# -- class construction from the spec ------------------------------------------------------------


def _ident(name: str) -> str:
    return name.replace(".", "_")


class _Field:
    """One spec field: its JSON name and kind string, split into what the code generator needs."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.required = kind.endswith("!") or kind.startswith("=")
        self.const = kind[1:] if kind.startswith("=") else None
        parts = ["s"] if self.const is not None else kind.rstrip("!").split("|")
        self.scalars = [p for p in parts if p[0] not in "@%["]
        self.dict_ref = next((p for p in parts if p[0] in "@%"), None)
        self.list_ref = next((p[1:] for p in parts if p[0] == "["), None)
        if (self.dict_ref and "d" in self.scalars) or (self.list_ref and "l" in self.scalars):
            raise ValueError(f"ambiguous kind {kind!r} for {name!r}")
        self.any = "a" in self.scalars

    @property
    def is_ref(self) -> bool:
        return bool(self.dict_ref or self.list_ref)

    def want(self) -> str:
        names = [_KIND_NAMES[s] for s in self.scalars]
        if self.dict_ref:
            names.append("object")
        if self.list_ref:
            names.append("array of objects")
        return " or ".join(names)


def _parser_name(ref: str) -> str:
    return ("_u_" if ref[0] == "%" else "_p_") + _ident(ref[1:])


def _check_code(cls: str, f: _Field, ind: str, var: str, on_none: str | None) -> list[str]:
    """Lines that check (and convert) ``var``; ``on_none`` runs if it is None (None: known not None)."""
    bad = f"_bad({cls!r}, {f.name!r}, {f.want()!r}, {var})"
    if on_none is not None:
        bad = f"\n{ind}    if {var} is None: {on_none}\n{ind}    else: {bad}"
    if f.any:
        return [f"{ind}if {var} is None: {on_none}"] if on_none else []
    lines = []
    branch = "if"
    subject = f"type({var})"
    if f.dict_ref or f.list_ref:
        lines.append(f"{ind}t = type({var})")
        subject = "t"
        if f.dict_ref:
            lines.append(f"{ind}if t is dict: {var} = {_parser_name(f.dict_ref)}({var})")
            branch = "elif"
        if f.list_ref:
            lines.append(f"{ind}{branch} t is list: {var} = _plist({_parser_name(f.list_ref)}, {var}, {cls!r}, {f.name!r})")
            branch = "elif"
    allowed = dict.fromkeys(t for s in f.scalars for t in _KIND_TYPES[s])
    test = " and ".join(f"{subject} is not {t.__name__}" for t in allowed)
    sep = "" if on_none is not None else " "  # the None branch starts on its own line
    lines.append(f"{ind}{branch} {test}:{sep}{bad}" if test else f"{ind}else:{sep}{bad}")
    return lines


def _get_all(name: str, ident: str, fields: list[_Field], fname: str) -> list[str]:
    """A parser that reads every field with ``dict.get``: absent and null fields are both None."""
    src = [f"def {fname}(d):", f"    o = _new(_C_{ident})", "    g = d.get", "    n = 0"]
    for f in fields:
        src.extend(_read_with_get(name, f))
    src.append(f"    o._extra = None if n == len(d) else _extras(d, _K_{ident})")
    src.append("    return o")
    return src


def _read_with_get(name: str, f: _Field) -> list[str]:
    """Parser lines reading one field with ``g = d.get``, counting it in ``n`` when present."""
    return [f"    v = g({f.name!r})", "    if v is not None:", "        n += 1",
            *_check_code(name, f, "        ", "v", None), f"    o.{f.name} = v"]


def _class_source(key: str, name: str, fields: list[_Field]) -> str:
    ident = _ident(key)
    required = [f for f in fields if f.required]
    optional = [f for f in fields if not f.required]
    if not required:
        src = _get_all(name, ident, fields, f"_p_{ident}")
    else:
        # Parser: dict from orjson -> instance, checking JSON kinds. Required fields are read by
        # subscript (the fast path); a frame that lacks one goes through the all-get variant.
        src = _get_all(name, ident, fields, f"_q_{ident}")
        src.append(f"def _p_{ident}(d):")
        src.append("    try:")
        src.extend(f"        v{i} = d[{f.name!r}]" for i, f in enumerate(required))
        src.append("    except KeyError:")
        src.append(f"        return _q_{ident}(d)")
        src.append(f"    o = _new(_C_{ident})")
        src.append(f"    n = {len(required)}")
        for i, f in enumerate(required):
            src.extend(_check_code(name, f, "    ", f"v{i}", "n -= 1"))
            src.append(f"    o.{f.name} = v{i}")
        if optional:
            src.append("    g = d.get")
        for f in optional:
            src.extend(_read_with_get(name, f))
        src.append(f"    o._extra = None if n == len(d) else _extras(d, _K_{ident})")
        src.append("    return o")
    # constructor: keyword arguments, None = JSON null, unknown keywords kept
    params = []
    for f in fields:
        if f.const is not None:
            params.append(f"{f.name}={f.const!r}")
        elif f.required:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_U")
    src.append(f"def _init_{ident}(_self, *, {', '.join(params + ['**_extra'])}):")
    for f in fields:
        a = f.name
        if not f.required:
            src.append(f"    if {a} is _U: {a} = None")
            src.append(f"    elif {a} is None: _extra[{a!r}] = None")
        else:
            src.append(f"    if {a} is None: _extra[{a!r}] = None")
        if f.dict_ref:
            src.append(f"    elif _isinstance({a}, _dict): {a} = _coerce({_parser_name(f.dict_ref)}, {a}, {name!r}, {a!r})")
        if f.list_ref:
            src.append(f"    elif _isinstance({a}, _list): {a} = _coerce({_parser_name(f.list_ref)}, {a}, {name!r}, {a!r})")
        src.append(f"    _self.{a} = {a}")
    src.append("    _self._extra = _extra or None")
    # to_dict: set fields in order, then extras and explicit nulls
    src.append(f"def _todict_{ident}(self):")
    src.append("    r = {}")
    for f in fields:
        src.append(f"    v = self.{f.name}")
        value = "_td(v)" if f.is_ref or f.any else "v"
        src.append(f"    if v is not None: r[{f.name!r}] = {value}")
    src.append("    e = self._extra")
    src.append("    return r if e is None else _merge(r, e)")
    return "\n".join(src)


def _union_parser(name: str, field: str, mapping: dict):
    """Parser for a union: look the discriminator up, recurse for nested discriminators."""
    table = {}
    for value, target in mapping.items():
        if isinstance(target, str):
            table[value] = _NS["_p_" + _ident(target)]
            _PATCH.setdefault(target, []).append((table, value))
        else:
            table[value] = _union_parser(name, *target)
    get = table.get

    def parse(d: dict):
        tag = d.get(field)
        if tag is not None and type(tag) is not str:
            _bad(name, field, "string", tag)
        p = get(tag)
        return UnknownObject(d) if p is None else p(d)

    return parse


# Compiling the generated code of all classes takes ~0.2 s, so each class is compiled on first
# use: until then its parser, constructor and to_dict are stubs that install the real ones.
# _PATCH lists the tables (parser registries, union tables) that hold a class's parser stub.
_NS: dict[str, object] = {
    "_new": object.__new__, "_bad": _bad, "_extras": _extras, "_plist": _plist, "_td": _td,
    "_merge": _merge, "_coerce": _coerce, "_U": _U, "_isinstance": isinstance, "_dict": dict, "_list": list,
}
_PATCH: dict[str, list[tuple[dict, object]]] = {}
_CLASSES: dict[str, type] = {}


def _spec_fields(key: str) -> list[_Field]:
    fields = [_Field(n, k) for n, k in CLASSES[key][1].items()]
    fields.sort(key=lambda f: f.name != "type")  # "type" first in the JSON we write
    return fields


def _install(key: str) -> type:
    """Compile the generated functions of one class and put them everywhere its stubs are."""
    cls = _CLASSES[key]
    ident = _ident(key)
    if "_p_" + ident in _NS and not getattr(_NS["_p_" + ident], "_stub", False):
        return cls  # already installed (possibly by another thread)
    _NS[f"_C_{ident}"] = cls
    _NS[f"_K_{ident}"] = frozenset(cls._fields)
    scratch: dict[str, object] = {}
    code = compile(_class_source(key, cls.__name__, _spec_fields(key)), f"<rtfast.events {key}>", "exec")
    exec(code, _NS, scratch)
    # definitions land in scratch; their globals are _NS, where other classes' parsers resolve
    init, todict, parser = scratch[f"_init_{ident}"], scratch[f"_todict_{ident}"], scratch[f"_p_{ident}"]
    init.__qualname__, todict.__qualname__ = f"{cls.__name__}.__init__", f"{cls.__name__}._to_dict"
    cls.__init__, cls._to_dict, cls._parse = init, todict, staticmethod(parser)
    _NS[f"_p_{ident}"] = parser
    if f"_q_{ident}" in scratch:
        _NS[f"_q_{ident}"] = scratch[f"_q_{ident}"]
    for table, k in _PATCH.pop(key, ()):
        table[k] = parser
    return cls


def _stubs(key: str) -> None:
    def parse(d):
        return _install(key)._parse(d)

    def __init__(self, **kwargs):
        _install(key).__init__(self, **kwargs)

    def _to_dict(self):
        return _install(key)._to_dict(self)

    parse._stub = True
    cls = _CLASSES[key]
    cls._parse, cls.__init__, cls._to_dict = staticmethod(parse), __init__, _to_dict
    _NS["_p_" + _ident(key)] = parse


def _build() -> None:
    """Create every spec class (cheap) with stub functions, and the union parsers."""
    event_side = {key: side for gen in EVENTS.values() for side, keys in gen.items() for key in keys}
    for key, (origin, spec) in CLASSES.items():
        names = tuple(sorted(spec, key=lambda n: n != "type"))
        side = event_side.get(key)
        attrs = {
            "__slots__": names,
            "__module__": f"{__name__}.{key.split('.', 1)[0]}" if "." in key else __name__,
            "__doc__": (f"``{spec['type'][1:] if 'type' in spec else key}``: sent by the API but not typed by the "
                        "official ``openai`` package (added by tools/gen_events.py)." if origin.startswith("+")
                        else f"``{origin}`` of the official ``openai`` package."),
            "_fields": names,
            "_order": tuple(spec),
            "_known": frozenset(spec),
            "_kinds": spec,
            "_key": attrgetter(*names, "_extra"),
        }
        if side is not None:
            attrs["TYPE"] = spec["type"][1:]
        base = ServerEvent if side == "server" else ClientEvent if side == "client" else Model
        _CLASSES[key] = type(key.rsplit(".", 1)[-1], (base,), attrs)
        _stubs(key)
    for key, (field, mapping) in UNIONS.items():
        _NS["_u_" + _ident(key)] = _union_parser(key, field, mapping)


_build()


def _registry(gen: str, side: str) -> dict[str, type]:
    return {_CLASSES[k].TYPE: _CLASSES[k] for k in EVENTS[gen][side]}


GA_SERVER_EVENTS = _registry("ga", "server")
GA_CLIENT_EVENTS = _registry("ga", "client")
BETA_SERVER_EVENTS = _registry("beta", "server")
BETA_CLIENT_EVENTS = _registry("beta", "client")
TRANSLATION_SERVER_EVENTS = _registry("translation", "server")
TRANSLATION_CLIENT_EVENTS = _registry("translation", "client")
LIVE_SERVER_EVENTS = _registry("live", "server")
LIVE_CLIENT_EVENTS = _registry("live", "client")
SERVER_EVENTS = {"ga": GA_SERVER_EVENTS, "beta": BETA_SERVER_EVENTS, "translation": TRANSLATION_SERVER_EVENTS,
                 "live": LIVE_SERVER_EVENTS}
CLIENT_EVENTS = {"ga": GA_CLIENT_EVENTS, "beta": BETA_CLIENT_EVENTS, "translation": TRANSLATION_CLIENT_EVENTS,
                 "live": LIVE_CLIENT_EVENTS}

# type -> parse function, per generation and side: the one lookup parse() does per frame
def _parsers(registries: dict[str, dict[str, type]]) -> dict[str, dict[str, object]]:
    keys = {cls: key for key, cls in _CLASSES.items()}
    out = {}
    for gen, reg in registries.items():
        table = out[gen] = {}
        for event_type, cls in reg.items():
            key = keys[cls]
            table[event_type] = _NS["_p_" + _ident(key)]
            _PATCH.setdefault(key, []).append((table, event_type))
    return out


_SERVER_PARSERS = _parsers(SERVER_EVENTS)
_CLIENT_PARSERS = _parsers(CLIENT_EVENTS)


def _camel_type(event_type: str) -> str:
    return "".join(w.capitalize() for w in event_type.replace(".", "_").split("_")) + "Event"


def _namespace(keys, registries) -> dict[str, type]:
    """Official names, plus a name spelt from the event type where that differs and is free
    (``ResponseOutputAudioDeltaEvent`` for the GA ``ResponseAudioDeltaEvent``)."""
    names = {k.rsplit(".", 1)[-1]: _CLASSES[k] for k in keys}
    for reg in registries:
        for event_type, cls in reg.items():
            names.setdefault(_camel_type(event_type), cls)
    return names


def _submodule(name: str, doc: str, members: dict[str, object]) -> types.ModuleType:
    mod = types.ModuleType(f"{__name__}.{name}", doc)
    mod.__dict__.update(members)
    mod.__all__ = sorted(members)
    sys.modules[mod.__name__] = mod
    return mod


_ga_names = _namespace([k for k in CLASSES if "." not in k], [GA_SERVER_EVENTS, GA_CLIENT_EVENTS])
globals().update({k: v for k, v in _ga_names.items() if k not in globals()})
__all__ += sorted(k for k in _ga_names if k not in __all__)

beta = _submodule(
    "beta",
    "Beta-generation (``OpenAI-Beta: realtime=v1``) event classes, named as in ``openai.types.beta.realtime``.",
    {
        **_namespace([k for k in CLASSES if k.startswith("beta.")], [BETA_SERVER_EVENTS, BETA_CLIENT_EVENTS]),
        "SERVER_EVENTS": BETA_SERVER_EVENTS,
        "CLIENT_EVENTS": BETA_CLIENT_EVENTS,
    },
)
translation = _submodule(
    "translation",
    "Translation-session (``/v1/realtime/translations``) event classes.",
    {
        **{c.__name__: c for c in [*TRANSLATION_SERVER_EVENTS.values(), *TRANSLATION_CLIENT_EVENTS.values()]},
        **{_camel_type(t): c for reg in (TRANSLATION_SERVER_EVENTS, TRANSLATION_CLIENT_EVENTS) for t, c in reg.items()},
        "SERVER_EVENTS": TRANSLATION_SERVER_EVENTS,
        "CLIENT_EVENTS": TRANSLATION_CLIENT_EVENTS,
    },
)
live = _submodule(
    "live",
    "GPT-Live (``/v1/live/sessions``) event classes, named as in ``openai.types.live`` (the sideband's\n"
    "``session.paused``/``session.resumed`` and ``transport.dtmf.send`` included). The server's legacy\n"
    "``transport.dtmf.send`` notification is ``ServerEventTransportDtmfSend``, the client command\n"
    "``ConnectClientEventTransportDtmfSend``.",
    {
        **_namespace([k for k in CLASSES if k.startswith("live.")], [LIVE_SERVER_EVENTS, LIVE_CLIENT_EVENTS]),
        "SERVER_EVENTS": LIVE_SERVER_EVENTS,
        "CLIENT_EVENTS": LIVE_CLIENT_EVENTS,
    },
)


# -- parse / dumps -------------------------------------------------------------------------------


def parse(data: bytes | bytearray | memoryview | str, *, generation: str = "ga", _side=_SERVER_PARSERS) -> ServerEvent:
    """Parse one server frame (UTF-8 JSON text) into its event class.

    ``generation`` is ``"ga"``, ``"beta"``, ``"translation"`` or ``"live"``: the same type name
    (``session.created``) has different payloads in each. Unknown types give an
    :class:`UnknownEvent`; malformed frames raise :class:`rtfast.ProtocolError`.
    """
    try:
        parsers = _side[generation]
    except KeyError:
        raise ValueError(f"generation must be one of {GENERATIONS}, not {generation!r}") from None
    try:
        d = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not isinstance(data, (bytes, bytearray, memoryview, str)):
            raise TypeError(f"expected bytes or str, got {type(data).__name__}") from None
        raise ProtocolError(f"not JSON ({exc.msg})", data) from None
    if type(d) is not dict:
        raise ProtocolError("not a JSON object", data)
    t = d.get("type")
    if type(t) is not str:
        raise ProtocolError("no string 'type'" if t is None else "'type' is not a string", data)
    p = parsers.get(t)
    if p is None:
        return UnknownEvent(d)
    try:
        return p(d)
    except _Bad as exc:
        raise ProtocolError(str(exc), data) from None


def parse_client(data: bytes | bytearray | memoryview | str, *, generation: str = "ga") -> ClientEvent:
    """Parse one client frame, as a server (or a test) receives it; otherwise like :func:`parse`."""
    return parse(data, generation=generation, _side=_CLIENT_PARSERS)


def _default(obj):
    if isinstance(obj, Model):
        return obj._to_dict()
    dump = getattr(obj, "model_dump", None)
    if callable(dump):          # a pydantic model (the official client's): what its transform sends
        return dump(exclude_unset=True, mode="json", exclude=getattr(obj, "__api_exclude__", None))
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(event: Model | dict) -> bytes:
    """Compact UTF-8 JSON of an event (or a dict, which may hold event objects): only set fields."""
    if isinstance(event, Model):
        event = event._to_dict()
    return orjson.dumps(event, default=_default)


# -- builders for the common client events -------------------------------------------------------

_G711_GA = {"pcmu": {"type": "audio/pcmu"}, "pcma": {"type": "audio/pcma"}, "pcm": {"type": "audio/pcm", "rate": 24000}}
_G711_BETA = {"pcmu": "g711_ulaw", "pcma": "g711_alaw", "pcm": "pcm16"}


def _client(generation: str, event_type: str) -> type:
    try:
        return CLIENT_EVENTS[generation][event_type]
    except KeyError:
        raise ValueError(f"no {event_type!r} client event in generation {generation!r}") from None


def _set(d: dict, **fields) -> dict:
    """Add the fields that are not None (builders take None as 'not given')."""
    d.update((k, v) for k, v in fields.items() if v is not None)
    return d


def session_update_g711(
    generation: str = "ga",
    codec: str = "pcmu",
    vad: str | None = "server_vad",
    instructions: str | None = None,
    voice: str | None = None,
    *,
    output_codec: str | None = None,
    event_id: str | None = None,
    **extra,
) -> ClientEvent:
    """``session.update`` for a telephony call: G.711 in and out, server or semantic VAD.

    ``codec`` is ``"pcmu"`` (μ-law) or ``"pcma"`` (A-law), 8 kHz; ``output_codec``
    (default: the same) may also be ``"pcm"`` (PCM16 24 kHz). ``vad`` is
    ``"server_vad"``, ``"semantic_vad"`` or None (sends ``turn_detection: null``,
    turning VAD off). ``extra`` adds session fields (``tools``, ``model``, ...), in
    the generation's own shape.

    GA: ``{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcmu"},
    "turn_detection":{...}},"output":{"format":...,"voice":...}}}``; beta: the flat
    ``input_audio_format: "g711_ulaw"`` fields.
    """
    out = output_codec or codec
    if codec not in ("pcmu", "pcma") or out not in _G711_GA:
        raise ValueError(f"codec must be 'pcmu' or 'pcma' (output also 'pcm'), not {codec!r}/{out!r}")
    if vad not in ("server_vad", "semantic_vad", None):
        raise ValueError(f"vad must be 'server_vad', 'semantic_vad' or None, not {vad!r}")
    turn = {"type": vad} if vad else None
    if generation == "ga":
        audio_out = _set({"format": dict(_G711_GA[out])}, voice=voice)
        session = {
            "type": "realtime",
            "audio": {"input": {"format": dict(_G711_GA[codec]), "turn_detection": turn}, "output": audio_out},
        }
    elif generation == "beta":
        session = {"input_audio_format": _G711_BETA[codec], "output_audio_format": _G711_BETA[out], "turn_detection": turn}
        _set(session, voice=voice)
    else:
        raise ValueError(f"generation must be 'ga' or 'beta', not {generation!r}")
    _set(session, instructions=instructions)
    session.update(extra)
    return _client(generation, "session.update")(**_set({"session": session}, event_id=event_id))


_APPEND_TYPES = {"translation": "session.input_audio_buffer.append", "live": "session.input_audio.append"}
_APPEND = {g: CLIENT_EVENTS[g][_APPEND_TYPES.get(g, "input_audio_buffer.append")] for g in GENERATIONS}


def input_audio_buffer_append(audio_b64: str, event_id: str | None = None, *, generation: str = "ga") -> ClientEvent:
    """``input_audio_buffer.append`` (translation: ``session.input_audio_buffer.append``, GPT-Live:
    ``session.input_audio.append``) of base64 audio
    in the session's input format."""
    try:
        cls = _APPEND[generation]
    except KeyError:
        raise ValueError(f"generation must be one of {GENERATIONS}, not {generation!r}") from None
    return cls(audio=audio_b64) if event_id is None else cls(audio=audio_b64, event_id=event_id)


def response_create(
    generation: str = "ga", *, instructions: str | None = None, event_id: str | None = None, **response
) -> ClientEvent:
    """``response.create``; keyword arguments are fields of ``response`` (None ones are left out)."""
    body = _set(dict(response), instructions=instructions)
    body = {k: v for k, v in body.items() if v is not None}
    return _client(generation, "response.create")(**_set({}, response=body or None, event_id=event_id))


def conversation_item_create_text(
    text: str,
    role: str = "user",
    *,
    generation: str = "ga",
    previous_item_id: str | None = None,
    event_id: str | None = None,
) -> ClientEvent:
    """``conversation.item.create`` of a text message (``input_text``, or the assistant's text part)."""
    if role not in ("user", "system", "assistant"):
        raise ValueError(f"role must be 'user', 'system' or 'assistant', not {role!r}")
    part = "input_text" if role != "assistant" else ("output_text" if generation == "ga" else "text")
    item = {"type": "message", "role": role, "content": [{"type": part, "text": text}]}
    return _client(generation, "conversation.item.create")(
        **_set({"item": item}, previous_item_id=previous_item_id, event_id=event_id)
    )


def conversation_item_truncate(
    item_id: str, content_index: int, audio_end_ms: int, *, generation: str = "ga", event_id: str | None = None
) -> ClientEvent:
    """``conversation.item.truncate``: cut an assistant audio item at ``audio_end_ms`` (ms of audio played)."""
    fields = {"item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms}
    return _client(generation, "conversation.item.truncate")(**_set(fields, event_id=event_id))


def function_call_output(
    call_id: str, output: str, *, generation: str = "ga", event_id: str | None = None
) -> ClientEvent:
    """``conversation.item.create`` of a ``function_call_output`` item (``output`` is usually JSON text)."""
    item = {"type": "function_call_output", "call_id": call_id, "output": output}
    return _client(generation, "conversation.item.create")(**_set({"item": item}, event_id=event_id))
