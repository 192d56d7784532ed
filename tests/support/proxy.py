"""A TCP proxy in front of a real server, to cut, refuse, stall or slow the connections a service makes to it."""

from __future__ import annotations

import asyncio
import contextlib
import time


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a real server; `cut`, `stall` and `heal` inject network faults.

    With `reply_delay` every chunk the server sends reaches the client that many seconds after it came, in order
    (what the client sends passes at once): a server far away, such as an SMTP provider across the internet.
    """

    def __init__(self, target_host: str, target_port: int, *, port: int = 0, reply_delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.reply_delay = reply_delay
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._accepted = 0  # connections so far, numbered from 0 in the order they came
        self._spared: set[int] = set()  # connections a stall leaves flowing
        self._refusing = False

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        """Close every open connection and refuse new ones until `heal` (like a server that went away)."""
        self._refusing = True
        self._drop_all()

    def stall(self, *, spare_first: int = 0) -> None:
        """Keep connections open but stop moving bytes (like a hung network path), except on the first
        `spare_first` connections ever made (a driver's monitor connects first: a server that answers its health
        checks and not the commands)."""
        self._spared = set(range(spare_first))
        self._flowing.clear()

    def heal(self) -> None:
        """Accept and forward again."""
        self._refusing = False
        self._flowing.set()

    def reset(self) -> None:
        """Drop every open connection once, then accept again (like a server restart)."""
        self._drop_all()
        self.heal()

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        for pump in list(self._pumps):
            pump.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        number, self._accepted = self._accepted, self._accepted + 1
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer, number=number)),
            asyncio.create_task(self._pump(upstream_reader, writer, number=number, delay=self.reply_delay)),
        ]
        self._pumps.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
            self._pumps.discard(pump)
        for w in (writer, upstream_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, number: int, delay: float = 0.0
    ) -> None:
        if delay > 0:
            await self._pump_later(reader, writer, delay)
            return
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if number not in self._spared:
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()

    async def _pump_later(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        # Reading goes on while chunks wait, so that delays do not add up behind each other.
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while (chunk := await held.get())[1]:
                await asyncio.sleep(max(0.0, chunk[0] - time.monotonic()))
                await self._flowing.wait()
                writer.write(chunk[1])
                await writer.drain()

        releaser = asyncio.create_task(release())
        try:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    held.put_nowait((time.monotonic() + delay, data))
            held.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await releaser
        finally:
            releaser.cancel()


def with_port(url: str, port: int) -> str:
    """The same URL pointing at the proxy on 127.0.0.1:`port` (for amqp:// and mongodb:// URLs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))
