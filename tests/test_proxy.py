"""Proxies: the Realtime websocket goes through an HTTP CONNECT (or SOCKS5)
proxy given as proxy=, in websocket_connection_options, or by the environment
(HTTPS_PROXY, ALL_PROXY), and not when proxy=None or NO_PROXY says so."""

import asyncio
import importlib.util

import pytest

import rtfast
from rtfast.errors import HandshakeError
from rtfast.server import RealtimeServer

PROXY_VARS = ["http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "socks_proxy", "no_proxy"]


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch):
    # The loopback target must not be bypassed or sent elsewhere by the machine's own settings.
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def _pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


class Proxy:
    """A loopback proxy that records the targets it connected to: HTTP CONNECT,
    or SOCKS5 (no auth, IPv4 or domain name) when socks=True."""

    def __init__(self, socks: bool = False) -> None:
        self.socks = socks
        self.targets: list[str] = []
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'socks5' if self.socks else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc):
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader, writer):
        self._tasks.add(asyncio.current_task())
        host, port = await (self._socks_target if self.socks else self._connect_target)(reader, writer)
        self.targets.append(f"{host}:{port}")
        up_reader, up_writer = await asyncio.open_connection(host, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(6) if self.socks else b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    @staticmethod
    async def _connect_target(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target, _ = head.split("\r\n")[0].split(" ")
        assert method == "CONNECT"
        host, _, port = target.rpartition(":")
        return host, int(port)

    @staticmethod
    async def _socks_target(reader, writer):
        _, n = await reader.readexactly(2)
        await reader.readexactly(n)
        writer.write(b"\x05\x00")
        _, cmd, _, atyp = await reader.readexactly(4)
        assert cmd == 1  # CONNECT
        if atyp == 1:
            host = ".".join(map(str, await reader.readexactly(4)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        return host, int.from_bytes(await reader.readexactly(2), "big")


async def _session_created(server, **connect_args):
    client = rtfast.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.base_url)
    async with client.realtime.connect(model="gpt-realtime", **connect_args) as conn:
        assert (await conn.recv()).type == "session.created"


@pytest.mark.parametrize("how", ["argument", "options", "HTTPS_PROXY", "ALL_PROXY", "https_proxy"])
async def test_connection_goes_through_the_proxy(how, monkeypatch):
    async with RealtimeServer() as server, Proxy() as proxy:
        if how == "argument":
            await _session_created(server, proxy=proxy.url)
        elif how == "options":
            await _session_created(server, websocket_connection_options={"proxy": proxy.url})
        else:
            monkeypatch.setenv(how, proxy.url)
            await _session_created(server)
        assert proxy.targets == [f"127.0.0.1:{server.port}"]


@pytest.mark.parametrize("how", ["proxy=None", "options None", "NO_PROXY"])
async def test_proxy_disabled(how, monkeypatch):
    async with RealtimeServer() as server, Proxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        if how == "proxy=None":
            await _session_created(server, proxy=None)
        elif how == "options None":
            await _session_created(server, websocket_connection_options={"proxy": None})
        else:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            await _session_created(server)
        assert proxy.targets == []


async def test_generic_connect_takes_a_proxy():
    async with RealtimeServer() as server, Proxy() as proxy:
        async with rtfast.connect(server.url + "?model=m", api_key="sk-test", proxy=proxy.url) as conn:
            assert (await conn.recv()).type == "session.created"
        assert proxy.targets == [f"127.0.0.1:{server.port}"]


@pytest.mark.skipif(importlib.util.find_spec("python_socks") is None,
                    reason="SOCKS proxies need python-socks (pip install python-socks)")
@pytest.mark.parametrize("how", ["argument", "ALL_PROXY"])
async def test_socks5_proxy(how, monkeypatch):
    async with RealtimeServer() as server, Proxy(socks=True) as proxy:
        if how == "argument":
            await _session_created(server, proxy=proxy.url)
        else:
            monkeypatch.setenv("ALL_PROXY", proxy.url)
            await _session_created(server)
        assert proxy.targets == [f"127.0.0.1:{server.port}"]


async def test_bad_proxy_url_is_a_clear_error():
    async with RealtimeServer() as server:
        with pytest.raises(HandshakeError, match="invalid proxy URL") as info:
            await _session_created(server, proxy="ftp://user:s3cret@127.0.0.1:1")
    assert "s3cret" not in str(info.value)
