from collections import deque
from typing import Any, Callable

def pump(pending: bytearray, chunk: int, now: float, play_end: float, seq: int, gen: int, chunk_ms: int,
         lead_ms: int, startup_bytes: int, receiving: bool, segments: deque, ledger: deque, ledger_max: int,
         sent_ms: dict, remember: Callable[..., None], out: list, media_head: bytes | None,
         media_tail: bytes | None, media: Callable[[Any], bytes], binary: bool, mark_head: bytes | None,
         mark: Callable[[str], bytes], recorder: Any) -> tuple[Any, int, int]: ...
