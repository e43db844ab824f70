"""Every ```python block in README.md and docs/*.md runs as written.

Each block runs in its own interpreter, in an empty folder, with
OPENAI_BASE_URL / OPENAI_API_KEY pointing at an embedded RealtimeServer on
loopback (what the README and docs/offline.md tell a reader to do). A block
that cannot run offline starts with the visible line
`# not run by tests/test_docs.py: <why>` and is only compiled.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from rtfast.server import RealtimeServer

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^( *)```python[^\n]*\n(.*?)^\1```", re.M | re.S)
SKIP = "# not run by tests/test_docs.py:"


def blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append((str(path.relative_to(ROOT)), line, textwrap.dedent(m.group(2))))
    return out


BLOCKS = blocks()


def test_the_blocks_are_found_and_few_are_skipped():
    assert len(BLOCKS) >= 15
    skipped = [(f, n) for f, n, code in BLOCKS if code.startswith(SKIP)]
    assert len(skipped) <= 4, skipped
    for f, n, code in BLOCKS:
        if code.startswith(SKIP):
            assert len(code.splitlines()[0]) > len(SKIP) + 10, f"{f}:{n}: say why it is not run"


@pytest.mark.parametrize("where,code", [(f"{f}:{n}", code) for f, n, code in BLOCKS],
                         ids=[f"{f}:{n}" for f, n, _ in BLOCKS])
async def test_block_runs(where, code, tmp_path):
    compile(code, where, "exec")                       # every block at least parses
    if code.startswith(SKIP):
        return
    script = tmp_path / "block.py"
    script.write_text(code)
    async with RealtimeServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
        env.update(OPENAI_BASE_URL=f"http://127.0.0.1:{server.port}/v1", OPENAI_API_KEY="sk-docs-test")
        proc = await asyncio.create_subprocess_exec(sys.executable, str(script), cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 45)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail(f"{where}: still running after 45 s (does it wait for a response it never asked for?)")
    assert proc.returncode == 0, f"{where} failed:\n{err.decode()}"
