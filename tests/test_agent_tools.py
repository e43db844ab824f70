"""Function tools from typed Python functions: schemas, docstrings, and running them."""

import asyncio
import dataclasses
import enum
import time
from typing import Annotated, Literal, Optional

import orjson
import pytest

from rtfast.bridge.tools import Tool, ToolError, schema_for, tool


class Unit(enum.Enum):
    C = "c"
    F = "f"


@dataclasses.dataclass
class Where:
    city: Annotated[str, "the city"]


@dataclasses.dataclass
class Address:
    street: str
    number: int = 1


def test_schema_from_the_signature_and_the_docstring():
    @tool
    async def book(ctx, city: str, nights: int, budget: float, smoking: bool, tags: list[str],
                   unit: Literal["c", "f"] = "c", note: Optional[str] = None, scale: Unit = Unit.C,
                   address: Address | None = None) -> dict:
        """Book a room.

        More text that is not the description.

        Args:
            city: where to stay
            nights: how many nights,
                at least one
        """
    s = book.schema()
    assert s["type"] == "function" and s["name"] == "book" and s["description"] == "Book a room."
    p = s["parameters"]
    assert p["required"] == ["city", "nights", "budget", "smoking", "tags"]     # ctx is not a parameter
    props = p["properties"]
    assert props["city"] == {"type": "string", "description": "where to stay"}
    assert props["nights"] == {"type": "integer", "description": "how many nights, at least one"}
    assert props["budget"] == {"type": "number"} and props["smoking"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["unit"] == {"enum": ["c", "f"], "type": "string"}
    assert props["note"] == {"type": "string"}
    assert props["scale"] == {"enum": ["c", "f"], "type": "string"}
    assert props["address"] == {"type": "object", "properties": {"street": {"type": "string"},
                                                                  "number": {"type": "integer"}},
                                "required": ["street"]}
    assert list(props) == ["city", "nights", "budget", "smoking", "tags", "unit", "note", "scale", "address"]


def test_sphinx_params_overrides_and_no_context():
    def lookup(order_id: str, verbose: bool = False) -> str:
        """Find an order.

        :param order_id: the order's number
        """
    t = tool(lookup, name="find-order", description="Look an order up", timeout=None)
    assert t.name == "find-order" and t.description == "Look an order up" and t.timeout is None
    assert t.parameters["properties"]["order_id"]["description"] == "the order's number"
    assert t.parameters["required"] == ["order_id"]
    assert "ctx" not in repr(t) and "order_id" in repr(t)


def test_declaration_errors_are_clear():
    with pytest.raises(ToolError, match=r"_takes_object\(x\): no JSON schema for type"):
        Tool(_takes_object)
    with pytest.raises(ToolError, match="tool name"):
        Tool(_noop, name="has space")
    assert schema_for(dict[str, int]) == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert schema_for(tuple[int, ...]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_for(int | str) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def _takes_object(x: object):
    pass


def _noop():
    pass


def run(t, args, ctx="CTX"):
    return orjson.loads(asyncio.run(t.run(ctx, args)))


def test_running_passes_context_and_arguments_and_encodes_the_result():
    got = []

    @tool
    async def weather(ctx, city: str, unit: str = "c"):
        got.append((ctx, city, unit))
        return {"city": city, "temperature": 21.5, "unit": unit}

    assert run(weather, '{"city": "Paris"}') == {"city": "Paris", "temperature": 21.5, "unit": "c"}
    assert got == [("CTX", "Paris", "c")]
    assert run(weather, {"city": "Oslo", "unit": "f"})["unit"] == "f"            # a dict works too

    @tool
    def plain(city: str) -> str:                                                # sync, no context, str result
        return f"it rains in {city}"

    assert asyncio.run(plain.run(None, '{"city": "Bergen"}')) == "it rains in Bergen"


def test_every_failure_becomes_an_error_output_never_an_exception():
    @tool(timeout=0.05)
    async def slow(ctx, city: str):
        await asyncio.sleep(5)

    @tool
    async def broken(ctx, city: str):
        raise KeyError("no such city")

    t0 = time.monotonic()
    assert "timed out after 0.05 s" in run(slow, '{"city": "x"}')["error"]
    assert time.monotonic() - t0 < 2
    assert run(broken, '{"city": "x"}') == {"error": "KeyError: 'no such city'"}
    assert "not valid JSON" in run(broken, '{"city": ')["error"]
    assert run(broken, "[1, 2]") == {"error": "arguments must be a JSON object"}
    assert run(broken, "{}") == {"error": "missing required argument(s): city"}
    assert run(broken, '{"city": "x", "zip": 1}') == {"error": "unknown argument(s): zip"}


def test_cancellation_is_not_swallowed():
    started = []

    @tool(timeout=None)
    async def forever(ctx):
        started.append(1)
        await asyncio.sleep(60)

    async def main():
        task = asyncio.ensure_future(forever.run(None, "{}"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert started == [1]


def test_docstrings_google_and_sphinx_with_continuations_and_other_sections():
    def google(city: str, days: int, unit: str = "c") -> dict:
        """Forecast for a city.

        Args:
            city: the city's name,
                as people say it
            days (int): how many days

            unit: c or f
        Returns:
            city: not a parameter, a field of the result
        """
    t = Tool(google)
    props = t.parameters["properties"]
    assert t.description == "Forecast for a city."
    assert props["city"]["description"] == "the city's name, as people say it"
    assert props["days"]["description"] == "how many days" and props["unit"]["description"] == "c or f"

    def sphinx(city: str, days: int) -> dict:
        """Forecast.

        :param city: the city,
            in full
        :param int days: how many
        :returns: the forecast
            days: not a parameter either
        """
    props = Tool(sphinx).parameters["properties"]
    assert props["city"]["description"] == "the city, in full" and props["days"]["description"] == "how many"

    def dedented(city: str) -> None:
        """Args:
            city: where
        The end of the section.
        """
    assert Tool(dedented).parameters["properties"]["city"]["description"] == "where"

    def undocumented(city):                         # no docstring, no annotation
        pass
    t = Tool(undocumented)
    assert t.description == "" and t.parameters["properties"] == {"city": {}} and t.timeout == 10.0


def test_context_parameters_annotations_and_forward_references():
    from typing import Annotated, Any

    class Ctx:
        __rtfast_context__ = True

    def by_name(context, city: Annotated[str, "the city"], n: Annotated[int, 3], extra: dict[str, Any]):
        pass

    def by_type(c: Ctx, city: str):
        pass

    t = Tool(by_name)
    assert list(t.parameters["properties"]) == ["city", "n", "extra"]
    assert t.parameters["properties"]["city"] == {"type": "string", "description": "the city"}
    assert t.parameters["properties"]["n"] == {"type": "integer"}                 # only text describes
    assert t.parameters["properties"]["extra"] == {"type": "object"}
    assert list(Tool(by_type).parameters["properties"]) == ["city"]
    assert asyncio.run(tool(by_type, timeout=None).run("CTX", '{"city": "x"}')) == "null"

    def unresolvable(city: "NoSuchType"):          # noqa: F821
        pass
    with pytest.raises(ToolError, match="no JSON schema"):
        Tool(unresolvable)


def test_argument_checks_follow_the_signature():
    @tool
    async def anything(ctx, city: str, *rest, **more):
        return {"city": city, **more}

    @tool
    async def nothing(ctx):
        return "ok"

    assert list(anything.parameters["properties"]) == ["city"]                      # *rest, **more: not in it
    assert run(anything, '{"city": "Rome", "zip": 1}') == {"city": "Rome", "zip": 1}  # **more takes the rest
    assert run(nothing, '{"zip": 1}') == {"error": "unknown argument(s): zip"}
    assert asyncio.run(nothing.run(None, "{}")) == "ok"
    assert anything.timeout == 10.0 and anything.parameters["type"] == "object"


def test_an_async_callable_object_and_annotation_text_first():
    from typing import Annotated

    class Lookup:
        async def __call__(self, ctx, city: Annotated[str, "from the annotation"]) -> str:
            """Look a city up.

            Args:
                city: from the docstring
                    default: Paris
            """
            return city.upper()

    t = Tool(Lookup(), name="lookup")
    assert t.parameters["properties"]["city"]["description"] == "from the annotation"
    assert asyncio.run(t.run(None, '{"city": "rome"}')) == "ROME"


def test_docstring_edges():
    def f(city: str, when: str) -> None:
        """Args:
            city: the city,
                default: Paris
        A paragraph after the section.
            when: not a parameter's text
        """
    params = Tool(f).parameters["properties"]
    assert params["city"]["description"] == "the city, default: Paris" and "description" not in params["when"]

    def g(city: str) -> None:
        """:param city: the city
        Prose after the fields.
        Returns:
            city: a field of the result
        """
    assert Tool(g).parameters["properties"]["city"]["description"] == "the city"

    assert schema_for(Where)["properties"]["city"] == {"type": "string", "description": "the city"}
    with pytest.raises(ToolError, match=r"tool parameter \?: no JSON schema"):
        schema_for(object)


def test_annotation_text_wins_keyword_only_parameters_and_shallow_continuations():
    from typing import Annotated

    def f(ctx, city: Annotated[str, "from the annotation"], *rest, zip: str = "", **more) -> None:
        """Find.

        :param city: from the docstring
        :param zip: the postcode,
         in full
        """
    props = Tool(f).parameters["properties"]
    assert props["city"]["description"] == "from the annotation"
    assert props["zip"] == {"type": "string", "description": "the postcode, in full"}
