"""A text conversation: send a message, print the reply as it streams in.

    python examples/text_only.py "What is the capital of France?"

With OPENAI_API_KEY set it talks to OpenAI; without (or with --local), to
rtfast's embedded server.
"""

import asyncio

from _common import MODEL, argument_parser, realtime_client
from rtfast.server import Script


async def main(prompt: str, local: bool = False) -> None:
    async with realtime_client(Script(reply_text="Paris is the capital of France."), local) as client:
        async with client.realtime.connect(model=MODEL) as connection:
            await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}],
            })
            await connection.response.create()

            async for event in connection:
                if event.type == "response.output_text.delta":
                    print(event.delta, end="", flush=True)
                elif event.type == "response.output_text.done":
                    print()
                elif event.type == "error":
                    print("error:", event.error.message)
                elif event.type == "response.done":
                    break


if __name__ == "__main__":
    parser = argument_parser(__doc__)
    parser.add_argument("prompt", nargs="*", help="what to ask (default: What is the capital of France?)")
    args = parser.parse_args()
    asyncio.run(main(" ".join(args.prompt) or "What is the capital of France?", args.local))
