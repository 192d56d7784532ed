"""`python -m bench.slow_smtp`: a TCP relay in front of the local SMTP server that delays every reply.

Mailpit accepts a message in ~2 ms; an SMTP provider over the internet takes tens of milliseconds per reply
(greeting, EHLO, MAIL, each RCPT, DATA, end of data). Each chunk the server sends is held for the delay, in
order, while the client's bytes pass at once; the messages still land in Mailpit, where the bench checks them.
Run as its own process so that its CPU is not the load generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def _delayed_pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()

    releaser = asyncio.create_task(release())
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(ConnectionError):
        await releaser
    with contextlib.suppress(Exception):
        writer.close()


async def serve(port: int, target_host: str, target_port: int, delay: float) -> None:
    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, server_writer), _delayed_pipe(server_reader, client_writer, delay))

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    print(f"slow smtp on 127.0.0.1:{port} -> {target_host}:{target_port}, replies +{delay * 1000:g} ms", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_smtp", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, default=1025)
    parser.add_argument("--reply-delay-ms", type=float, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.target_host, args.target_port, args.reply_delay_ms / 1000))


if __name__ == "__main__":
    main()
