"""The JSON results of the REST calls that mint sessions and keys (client secrets, beta sessions,
transcription sessions, ``live.create``, ``live.sessions.fork``).

The official client returns pydantic models (``secret.value``, ``session.client_secret.value``);
rtfast returned plain dicts (``secret["value"]``). :class:`RestObject` is both: a ``dict`` subclass
(item access, ``==`` with dicts, ``json.dumps``/``orjson.dumps`` unchanged) whose keys also read as
attributes, at every nesting level (objects inside lists too), with the official models'
``to_dict()``/``model_dump()``/``model_dump_json()``/``to_json()``. A key the API did not send
raises AttributeError (``.get()`` reads it optionally); a key named like a dict method (``items``,
``keys``...) reads only as an item.

rtfast.events' models do not fit here: they are not dicts (existing ``secret["value"]`` code would
break) and keep nested unknown objects as plain dicts.

Reprs never show a secret: the ``value`` of a client secret (the ephemeral key) and any key naming
a secret read ``'<redacted>'`` in ``repr()``/``str()``, so a log line or traceback that prints a
result does not leak the key. The data itself is unchanged.
"""

from __future__ import annotations

import json

__all__ = ["RestObject", "ClientSecretCreateResponse", "RealtimeTranslationClientSecretCreateResponse",
           "SessionCreateResponse", "TranscriptionSession", "LiveCreateResponse", "SessionForkResponse", "wrap"]

_REDACTED = "<redacted>"


class RestObject(dict):
    """A JSON object from the REST API: a dict whose keys also read as attributes."""

    __slots__ = ()
    #: True when this object's ``value`` is a secret (a client secret: the ephemeral key)
    _secret_value = False

    def __getattr__(self, name: str):
        # only reached for names that are not dict attributes
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def to_dict(self, *, mode: str = "python", exclude_none: bool = False, **options) -> dict:
        """The JSON object as plain dicts and lists (the official ``to_dict()``: what the API sent)."""
        _check(mode, options)
        return _plain(self, exclude_none)

    # the keys the API sent (it sends every field, so there are no unset ones)
    model_dump = to_dict

    def model_dump_json(self, *, indent: int | None = None, exclude_none: bool = False, **options) -> str:
        _check("json", options)
        return json.dumps(_plain(self, exclude_none), indent=indent, ensure_ascii=False,
                          separators=None if indent is not None else (",", ":"))

    def to_json(self, *, indent: int | None = 2, exclude_none: bool = False, **options) -> str:
        return self.model_dump_json(indent=indent, exclude_none=exclude_none, **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={_shown(self, k, v)}' for k, v in self.items())})"

    __str__ = __repr__


class _ClientSecret(RestObject):
    """A ``client_secret`` object (``value``: the ephemeral key, ``expires_at``)."""

    __slots__ = ()
    _secret_value = True


# The official result types' names, so a repr says what it is.
class ClientSecretCreateResponse(RestObject):
    """``realtime.client_secrets.create``: ``value`` (the ephemeral key), ``expires_at``, ``session``."""

    __slots__ = ()
    _secret_value = True


class RealtimeTranslationClientSecretCreateResponse(ClientSecretCreateResponse):
    """``realtime.translations.client_secrets.create``: ``value``, ``expires_at``, ``session``."""

    __slots__ = ()


class SessionCreateResponse(RestObject):
    """Beta ``realtime.sessions.create``: the session, its key in ``client_secret.value``."""

    __slots__ = ()


class TranscriptionSession(RestObject):
    """Beta ``realtime.transcription_sessions.create``: the session, its key in ``client_secret.value``."""

    __slots__ = ()


class LiveCreateResponse(RestObject):
    """``live.create``: ``session`` and ``transport`` (the SDP answer)."""

    __slots__ = ()


class SessionForkResponse(LiveCreateResponse):
    """``live.sessions.fork``: ``session`` and ``transport``."""

    __slots__ = ()


# pydantic keywords that change nothing here (every key was sent, none has a default or an alias)
_NO_OP = frozenset({"exclude_unset", "exclude_defaults", "by_alias", "use_api_names", "warnings", "round_trip",
                    "ensure_ascii"})


def _check(mode: str, options: dict) -> None:
    if mode not in ("python", "json"):
        raise ValueError(f"mode must be 'python' or 'json', not {mode!r}")
    unknown = sorted(set(options) - _NO_OP)
    if unknown:
        raise TypeError(f"unsupported keyword(s) {', '.join(unknown)} (supported: mode, exclude_none, "
                        f"{', '.join(sorted(_NO_OP))})")


def secret_key(name: str) -> bool:
    """Whether a key names a secret (not its ``_hint``): what no repr shows (also rtfast.webhooks')."""
    return "secret" in name and not name.endswith("_hint")


def _shown(obj: RestObject, key, value) -> str:
    if isinstance(value, str) and ((key == "value" and obj._secret_value) or secret_key(str(key))
                                   or value.startswith("ek_")):
        return repr(_REDACTED)
    return repr(value)


def _convert(value, key=None):
    if type(value) is dict:
        cls = _ClientSecret if key == "client_secret" else RestObject
        return cls({k: _convert(v, k) for k, v in value.items()})
    if type(value) is list:
        return [_convert(v) for v in value]
    return value


def wrap(payload, cls: type[RestObject] = RestObject):
    """A decoded JSON value with its objects as :class:`RestObject` (the top one as ``cls``)."""
    if type(payload) is not dict:
        return _convert(payload)
    return cls({k: _convert(v, k) for k, v in payload.items()})


def _plain(value, exclude_none: bool):
    if isinstance(value, dict):
        return {k: _plain(v, exclude_none) for k, v in value.items() if not (exclude_none and v is None)}
    if isinstance(value, list):
        return [_plain(v, exclude_none) for v in value]
    return value
