"""Function calling: the model asks for a tool, we run it and send back its
output, the model answers with it.

    python examples/function_calling.py "What's the weather in Paris?"

With OPENAI_API_KEY set it talks to OpenAI; without (or with --local), to
rtfast's embedded server, which stands in for the model below.
"""

import asyncio
import json

from _common import MODEL, argument_parser, realtime_client
from rtfast.server import FunctionCall, Reply

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def get_weather(city: str) -> dict:
    return {"city": city, "sky": "sunny", "temperature_c": 22}


def local_model(session, user):
    """The embedded server's stand-in for the model: call the tool, then use its output."""
    if user.function_output is None:
        return Reply(function_call=FunctionCall("get_weather", {"city": "Paris"}))
    weather = json.loads(user.function_output["output"])
    return Reply(f"It is {weather['sky']} and {weather['temperature_c']} degrees in {weather['city']}.")


async def respond(connection):
    """Run one response; returns its output items."""
    await connection.response.create()
    async for event in connection:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
        elif event.type == "error":
            print("error:", event.error.message)
        elif event.type == "response.done":
            return event.response.output or []
    return []


async def main(prompt: str, local: bool = False) -> None:
    async with realtime_client(local_model, local) as client:
        async with client.realtime.connect(model=MODEL) as connection:
            await connection.session.update(session={
                "type": "realtime", "output_modalities": ["text"], "tools": [WEATHER_TOOL],
            })
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}],
            })
            output = await respond(connection)

            calls = [item for item in output if item.type == "function_call"]
            for call in calls:
                result = get_weather(**json.loads(call.arguments))
                print(f"[{call.name}({call.arguments}) -> {json.dumps(result)}]")
                await connection.conversation.item.create(item={
                    "type": "function_call_output", "call_id": call.call_id, "output": json.dumps(result),
                })
            if calls:
                await respond(connection)
            print()


if __name__ == "__main__":
    parser = argument_parser(__doc__)
    parser.add_argument("prompt", nargs="*", help="what to ask (default: What's the weather in Paris?)")
    args = parser.parse_args()
    asyncio.run(main(" ".join(args.prompt) or "What's the weather in Paris?", args.local))
