"""Where the tests find their servers: env URLs, else testcontainers when Docker answers, else the local stack."""

from __future__ import annotations

import os
import socket
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class Servers:
    amqp_url: str
    mongodb_url: str
    smtp_host: str
    smtp_port: int
    mailpit_url: str
    rabbitmq_management_url: str
    amqp_base_url: str = ""
    """The broker's URL without a virtual host (`amqp_url` may name the test session's own vhost)."""

    def service_env(self, *, amqp_url: str | None = None) -> dict[str, str]:
        """The environment a service process needs to reach these servers (AMQP on `amqp_url` if given)."""
        return {
            "AMQP_URL": amqp_url or self.amqp_url,
            "MONGODB_URL": self.mongodb_url,
            "SMTP_HOST": self.smtp_host,
            "SMTP_PORT": str(self.smtp_port),
        }


LOCAL = Servers(
    amqp_url="amqp://guest:guest@127.0.0.1:5672/",
    mongodb_url="mongodb://127.0.0.1:27017/",
    smtp_host="127.0.0.1",
    smtp_port=1025,
    mailpit_url="http://127.0.0.1:8025",
    rabbitmq_management_url="http://127.0.0.1:15672",
)


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url if "://" in url else f"tcp://{url}")
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def resolve(stack: ExitStack) -> Servers:
    """Pick the servers once per test session; containers started here stop with `stack`."""
    env = os.environ
    if env.get("AMQP_URL") and env.get("MONGODB_URL"):
        return Servers(
            amqp_url=env["AMQP_URL"],
            mongodb_url=env["MONGODB_URL"],
            smtp_host=env.get("SMTP_HOST", LOCAL.smtp_host),
            smtp_port=int(env.get("SMTP_PORT", LOCAL.smtp_port)),
            mailpit_url=env.get("MAILPIT_URL", LOCAL.mailpit_url),
            rabbitmq_management_url=env.get("RABBITMQ_MANAGEMENT_URL", LOCAL.rabbitmq_management_url),
        )
    if _docker_answers():
        return _containers(stack)
    missing = [
        name
        for name, url, port in (
            ("RabbitMQ", LOCAL.amqp_url, 5672),
            ("MongoDB-compatible server", LOCAL.mongodb_url, 27017),
            ("SMTP (Mailpit)", "127.0.0.1:1025", 1025),
        )
        if not _reachable(url, port)
    ]
    if missing:
        raise RuntimeError(f"not reachable: {', '.join(missing)}; start the local stack with `make stack`")
    return LOCAL


def _containers(stack: ExitStack) -> Servers:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13.7-management"))
    mongo = stack.enter_context(MongoDbContainer("mongo:7.0.14"))
    mailpit = stack.enter_context(DockerContainer("axllent/mailpit:v1.21.8").with_exposed_ports(1025, 8025))
    wait_for_logs(mailpit, "accessible via")
    host = rabbit.get_container_host_ip()
    return Servers(
        amqp_url=f"amqp://guest:guest@{host}:{rabbit.get_exposed_port(5672)}/",
        mongodb_url=mongo.get_connection_url(),
        smtp_host=mailpit.get_container_host_ip(),
        smtp_port=int(mailpit.get_exposed_port(1025)),
        mailpit_url=f"http://{mailpit.get_container_host_ip()}:{mailpit.get_exposed_port(8025)}",
        rabbitmq_management_url=f"http://{host}:{rabbit.get_exposed_port(15672)}",
    )
