"""An asyncio transport that keeps (or only counts) what is written: a WebSocket
driven without sockets, by calling its data_received (the bridge's in-process tests
and benchmarks/_callsim.py)."""

from __future__ import annotations

import asyncio

from rtfast.websocket import OPEN, WebSocket


class MemoryTransport(asyncio.Transport):
    """Keeps every write in ``chunks`` (``keep``), or only counts writes and bytes."""

    def __init__(self, keep: bool = True) -> None:
        super().__init__()
        self.keep, self.chunks, self.writes, self.bytes = keep, [], 0, 0

    def write(self, data) -> None:
        self.writes += 1
        self.bytes += len(data)
        if self.keep:
            self.chunks.append(bytes(data))

    def get_extra_info(self, name, default=None):
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def open_ws(ws: WebSocket, keep: bool = True) -> MemoryTransport:
    """Attach a MemoryTransport and mark the websocket open, as if its handshake were done."""
    t = MemoryTransport(keep)
    ws.connection_made(t)
    if ws._close_handle is not None:          # the server side's open timeout: no handshake here
        ws._close_handle.cancel()
        ws._close_handle = None
    ws.state = OPEN
    return t


def bridge_call(bridge, keep: bool = True, call_id: str = "call-1"):
    """A call of ``bridge`` (a BridgeServer, not started) over two in-memory websockets, wired
    as ``_CallIO.run`` wires a real one once its realtime socket is open (lane included);
    returns (io, carrier ws, realtime ws). Feed it with each socket's ``data_received``."""
    from rtfast.bridge import server

    cws, rws = WebSocket(client=False, keep_handshake=False), WebSocket(client=True, keep_handshake=False)
    open_ws(cws, keep)
    open_ws(rws, keep)
    io = server._CallIO(bridge, cws, call_id)
    io.rt = rws
    rws.send_many(io.pending_realtime)
    io.pending_realtime = []
    cws.set_handlers(io.from_carrier, io.carrier_closed)
    io.install_lane()
    rws.set_handlers(io.from_realtime, io.realtime_closed)
    io.install_model_lane()
    return io, cws, rws
