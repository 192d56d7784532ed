"""The services as real processes (`python -m SERVICE serve`), for end-to-end and fault tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass
class ServiceProcess:
    """One service process with its environment; its log goes to a file the failure message shows."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        env = {**os.environ, **self.env, "HTTP_PORT": str(self.port), "LOG_JSON": "true"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", self.name, "serve"], env=env, stdout=log, stderr=log)

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")

    def start(self, *, ready_timeout: float = 30.0) -> None:
        """Start and wait (blocking) until /readyz answers 200."""
        self._spawn()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {ready_timeout}s:\n{self.tail()}")

    async def start_async(self, *, ready_timeout: float = 30.0) -> None:
        """Start and wait until /readyz answers 200, without blocking the event loop (proxies run on it)."""
        self._spawn()
        deadline = time.monotonic() + ready_timeout
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready within {ready_timeout}s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send `sig` and wait for the exit; return the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
