"""`python -m bench.slow_smtp`: the test suite's TCP proxy in front of the SMTP server, every reply delayed.

Mailpit accepts a message in ~2 ms; an SMTP provider over the internet takes tens of milliseconds per reply
(greeting, EHLO, MAIL, each RCPT, DATA, end of data). The messages still land in Mailpit, where the bench checks
them. Run as its own process so that its CPU is not the load generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.support.proxy import FaultProxy


async def serve(port: int, target_host: str, target_port: int, delay: float) -> None:
    proxy = await FaultProxy(target_host, target_port, port=port, reply_delay=delay).start()
    print(
        f"slow smtp on 127.0.0.1:{proxy.port} -> {target_host}:{target_port}, replies +{delay * 1000:g} ms", flush=True
    )
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.close()


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
