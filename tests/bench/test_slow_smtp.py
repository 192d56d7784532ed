"""The bench's delaying SMTP relay: every reply waits, and the messages still reach the SMTP server."""

from __future__ import annotations

import time
from email.message import EmailMessage

import aiosmtplib
import pytest

from bench.environment import start_slow_smtp
from tests.support.ids import unique
from tests.support.mailpit import Mailpit
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_each_reply_is_held_for_the_delay_and_the_message_is_delivered(
    servers: Servers, mailpit: Mailpit
) -> None:
    proc, slow = start_slow_smtp(servers, reply_delay_ms=60)
    try:
        to = f"{unique('slow')}@client.example"
        message = EmailMessage()
        message["From"] = "bench@booking.example"
        message["To"] = to
        message["Subject"] = "held replies"
        message.set_content("hello")
        async with aiosmtplib.SMTP(hostname=slow.smtp_host, port=slow.smtp_port, timeout=10) as smtp:
            started = time.monotonic()
            await smtp.send_message(message)  # MAIL, RCPT, DATA, end of data: four replies, each held
            took = time.monotonic() - started
        assert took >= 4 * 0.06
        assert await eventually(lambda: mailpit.messages_to(to), timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
