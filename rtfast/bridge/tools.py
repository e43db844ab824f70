"""Function tools declared in Python: a typed function becomes the model's tool.

    @tool
    async def get_weather(ctx, city: str, unit: Literal["c", "f"] = "c") -> dict:
        '''The current weather in a city.

        Args:
            city: the city's name, e.g. "Paris"
            unit: degrees Celsius or Fahrenheit
        '''
        return {"city": city, "temperature": 21}

The JSON schema comes from the signature (str, int, float, bool, list[...],
dict, Literal, Enum, Optional, dataclasses), the description from the
docstring's first paragraph and each parameter's text from its ``Args:`` (or
``:param x:``) lines. A first parameter named ``ctx`` / ``context`` (or
annotated with the bridge's ``CallContext``) receives the call's context and is
not part of the schema. Handlers may be ``async`` or plain functions (a plain
one runs in the loop's default executor, so it cannot stall other calls).

Running a tool never raises: bad arguments, an exception in the handler or a
timeout all become an ``{"error": ...}`` output for the model, which can then
apologise or retry; the call goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import re
import types
import typing
from typing import Any, Callable, Literal, Union

import orjson

from rtfast.errors import RtfastError

__all__ = ["Tool", "tool", "ToolError", "schema_for", "error_output"]

_CONTEXT_NAMES = ("ctx", "context")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolError(RtfastError):
    """A tool declared wrongly (a type with no JSON schema, a bad name, a duplicate)."""


def _is_context(param: inspect.Parameter, hint: Any) -> bool:
    return param.name in _CONTEXT_NAMES or getattr(hint, "__rtfast_context__", False)


def schema_for(hint: Any, where: str = "") -> dict:
    """The JSON schema of a Python type hint."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return schema_for(rest[0], where)
        return {"anyOf": [schema_for(a, where) for a in rest]}
    if origin is Literal:
        kinds = {type(a) for a in args}
        out: dict = {"enum": list(args)}
        if len(kinds) == 1:
            out.update(schema_for(kinds.pop(), where))
        return out
    if origin is typing.Annotated:
        out = schema_for(args[0], where)
        for extra in args[1:]:
            if isinstance(extra, str):
                out["description"] = extra
        return out
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        items = args[0] if args else None         # tuple[int, ...] and list[int] alike
        out = {"type": "array"}
        if items is not None:
            out["items"] = schema_for(items, where)
        return out
    if origin is dict or hint is dict:
        out = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = schema_for(args[1], where)
        return out
    if isinstance(hint, type):
        if issubclass(hint, bool):
            return {"type": "boolean"}
        if issubclass(hint, enum.Enum):
            return schema_for(Literal[tuple(m.value for m in hint)], where)
        if issubclass(hint, int):
            return {"type": "integer"}
        if issubclass(hint, float):
            return {"type": "number"}
        if issubclass(hint, str):
            return {"type": "string"}
        if dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint, include_extras=True)
            props, required = {}, []
            for f in dataclasses.fields(hint):
                props[f.name] = schema_for(hints.get(f.name, Any), f"{where}.{f.name}")
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(f.name)
            return {"type": "object", "properties": props, "required": required}
    raise ToolError(f"tool parameter {where or '?'}: no JSON schema for type {hint!r}")


_SPHINX_PARAM = re.compile(r":param\s+(?:\w+\s+)?(\w+):\s*(.*)")
_ARGS = re.compile(r"(Args|Arguments|Parameters):$")
_OTHER = re.compile(r"(Returns|Raises|Yields|Examples?|Notes?):$")
_ENTRY = re.compile(r"(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)")


def _doc_params(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {param: text}) from a docstring: its first paragraph, and a
    Google-style ``Args:`` section or Sphinx ``:param x:`` fields (continuation
    lines, indented deeper, join their entry)."""
    params: dict[str, str] = {}
    desc: list[str] = []
    section = last = indent = None          # section: None (the description), "args", "sphinx", "other"
    for line in inspect.cleandoc(doc or "").splitlines():   # (cleandoc expands tabs)
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        m = _SPHINX_PARAM.match(stripped)
        if m:
            params[m.group(1)], last, section = m.group(2), m.group(1), "sphinx"
        elif stripped.startswith(":") or _OTHER.match(stripped):
            section, last = "other", None        # :returns:, Returns: ... end the parameters
        elif _ARGS.match(stripped):
            section, last, indent = "args", None, None
        elif section == "args" and stripped:
            if indent is None:
                indent = depth                   # the entries' own indentation
            entry = _ENTRY.match(stripped)
            if depth < indent:
                section, last = "other", None    # dedented: the section is over
            elif depth == indent and entry:
                params[entry.group(1)], last = entry.group(2), entry.group(1)
            elif last is not None:
                params[last] += " " + stripped
        elif section == "sphinx" and stripped and depth > 0 and last is not None:
            params[last] += " " + stripped
        elif section is None:
            desc.append(line)
    first = "\n".join(desc).strip().split("\n\n")[0]
    return " ".join(first.split()), params


class Tool:
    """One function tool: what the model is told (``name``, ``description``,
    ``parameters``) and the handler that answers it."""

    __slots__ = ("name", "description", "parameters", "handler", "timeout", "_context", "_is_async", "_names",
                 "_any_keyword")

    def __init__(self, handler: Callable, *, name: str | None = None, description: str | None = None,
                 parameters: dict | None = None, timeout: float | None = 10.0) -> None:
        self.handler = handler
        self.name = name or handler.__name__
        if not _NAME.match(self.name):
            raise ToolError(f"tool name {self.name!r}: use 1-64 letters, digits, '_' or '-'")
        doc_desc, doc_params = _doc_params(handler.__doc__ or "")
        self.description = description if description is not None else doc_desc
        self.timeout = timeout
        sig = inspect.signature(handler)
        try:
            hints = typing.get_type_hints(handler, include_extras=True)
        except Exception:                     # unresolvable forward references: fall back to the raw annotations
            hints = {p.name: p.annotation for p in sig.parameters.values()}
        params = list(sig.parameters.values())
        self._context = bool(params) and _is_context(params[0], hints.get(params[0].name))
        if self._context:
            params = params[1:]
        self._names = tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        self._any_keyword = any(p.kind is p.VAR_KEYWORD for p in params)    # **kwargs takes what comes
        if parameters is None:
            props, required = {}, []
            for p in params:
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                s = schema_for(hints.get(p.name, p.annotation), f"{self.name}({p.name})")
                if p.name in doc_params and "description" not in s:
                    s = {**s, "description": doc_params[p.name]}
                props[p.name] = s
                if p.default is inspect.Parameter.empty:
                    required.append(p.name)
            parameters = {"type": "object", "properties": props, "required": required}
        self.parameters = parameters
        target = handler.func if isinstance(handler, functools.partial) else handler
        self._is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
            getattr(target, "__call__", None))

    def schema(self) -> dict:
        """The tool as the session's ``tools`` list takes it."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    def __repr__(self) -> str:
        return f"<Tool {self.name}({', '.join(self._names)})>"

    async def run(self, ctx: Any, arguments: str | bytes | dict) -> str:
        """Answer one call: the output string for ``function_call_output``.
        Never raises (but lets cancellation through)."""
        try:
            args = orjson.loads(arguments) if isinstance(arguments, (str, bytes)) else arguments
        except orjson.JSONDecodeError as exc:
            return error_output(f"arguments are not valid JSON ({exc})")
        if not isinstance(args, dict):
            return error_output("arguments must be a JSON object")
        missing = [n for n in self.parameters.get("required", ()) if n not in args]
        if missing:
            return error_output(f"missing required argument(s): {', '.join(missing)}")
        if not self._any_keyword:
            unknown = [k for k in args if k not in self._names]
            if unknown:
                return error_output(f"unknown argument(s): {', '.join(unknown)}")
        call_args = (ctx,) if self._context else ()
        try:
            if self._is_async:
                work = self.handler(*call_args, **args)
            else:
                loop = asyncio.get_running_loop()
                work = loop.run_in_executor(None, functools.partial(self.handler, *call_args, **args))
            result = await asyncio.wait_for(work, self.timeout) if self.timeout else await work
        except asyncio.TimeoutError:
            return error_output(f"the tool {self.name} timed out after {self.timeout:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:               # the model hears of it; the call goes on
            return error_output(f"{type(exc).__name__}: {exc}")
        return result if isinstance(result, str) else _dumps(result)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def error_output(message: str) -> str:
    """A tool output telling the model that the call failed, and why."""
    return _dumps({"error": message})


def tool(fn: Callable | None = None, *, name: str | None = None, description: str | None = None,
         parameters: dict | None = None, timeout: float | None = 10.0):
    """Make a :class:`Tool` of a function (as ``@tool`` or ``@tool(name=..., timeout=...)``)."""
    def make(f: Callable) -> Tool:
        return Tool(f, name=name, description=description, parameters=parameters, timeout=timeout)

    return make(fn) if fn is not None else make
