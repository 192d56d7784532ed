"""The mailer against real SMTP servers: which failures retry, which park the email, and how long a send may take."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import REGISTRY
from pymongo.errors import PyMongoError

from notifier.emails import SmtpConnection, SmtpMailer, cancellation_email
from notifier.handlers import on_job_request_cancelled
from notifier.store import Notices, SentEmails
from service_runtime.errors import PermanentError, TransientError, Unavailable
from service_runtime.mongo import connect_mongo
from tests.support.events import cancelled_event
from tests.support.ids import unique
from tests.support.mailpit import Mailpit
from tests.support.processes import free_port, listening
from tests.support.proxy import FaultProxy, with_port
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

MAILPIT = Path(os.environ.get("STACK_CACHE", Path.home() / ".cache/petsit-stack")) / "bin/mailpit"


@pytest.fixture(scope="module")
def strict_smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Mailpit of its own that wants a login (bookings / s3cret) and takes recipients at ok.example only."""
    if not MAILPIT.exists():
        pytest.skip(f"no Mailpit binary at {MAILPIT} (the local stack installs it)")
    folder = tmp_path_factory.mktemp("strict_smtp")
    (folder / "auth").write_text("bookings:s3cret\n")
    port = free_port()
    process = subprocess.Popen(
        [
            str(MAILPIT),
            f"--smtp=127.0.0.1:{port}",
            f"--listen=127.0.0.1:{free_port()}",
            f"--database={folder / 'mail.db'}",
            f"--smtp-auth-file={folder / 'auth'}",
            "--smtp-auth-allow-insecure",
            r"--smtp-allowed-recipients=@ok\.example$",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert time.monotonic() < deadline and process.poll() is None, "Mailpit did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Received:
    """aiosmtpd's handler: keeps each accepted message's envelope; `mail_reply`/`rcpt_reply` script refusals."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.mail_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.refuse: dict[str, str] = {}  # recipient -> the reply refusing it
        self.data_reply: str | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply or address in self.refuse:
            return self.rcpt_reply or self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        content = envelope.original_content or b""
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


@pytest.fixture
def ascii_only_smtp() -> Iterator[tuple[int, _Received]]:
    """A real SMTP server (aiosmtpd) that does not offer SMTPUTF8, as many providers do not."""
    received = _Received()
    controller = Controller(received, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        yield controller.port, received
    finally:
        controller.stop()


def a_message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Bookings <no-reply@booking.example>"
    message["To"] = to
    message["Subject"] = "test"
    message.set_content("hello")
    return message


async def test_wrong_smtp_credentials_are_transient_so_the_email_retries_instead_of_being_parked(
    strict_smtp: int,
) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=strict_smtp, username="bookings", password="old-secret", timeout=5)
    with pytest.raises(TransientError, match="535"):
        await mailer.send(a_message("ann@ok.example"))


async def test_a_server_that_wants_a_login_we_did_not_give_is_transient_too(strict_smtp: int) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=strict_smtp, timeout=5)
    with pytest.raises(TransientError, match="530"):
        await mailer.send(a_message("ann@ok.example"))


async def test_every_recipient_refused_for_good_makes_the_email_permanently_unsendable(strict_smtp: int) -> None:
    mailer = SmtpMailer(host="127.0.0.1", port=strict_smtp, username="bookings", password="s3cret", timeout=5)
    with pytest.raises(PermanentError, match="550") as refused:
        await mailer.send(a_message("ann@unknown.example"))
    assert "ann@unknown.example" not in str(refused.value)  # it goes into logs and the DLQ header
    await mailer.send(a_message("ann@ok.example"))  # the connection pool is still good after a refusal
    await mailer.close()


async def test_a_client_at_a_unicode_domain_gets_the_email_from_a_server_without_smtputf8(
    ascii_only_smtp: tuple[int, _Received],
) -> None:
    port, received = ascii_only_smtp
    event = cancelled_event(
        client={"id": "c1", "name": "Anna Müller", "email": "anna@hundesalon-münchen.example"},
        business={"id": "b1", "name": "Pfoten", "admin_email": "buero@tierbetreuung-köln.example", "timezone": "UTC"},
    )
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5)
    await mailer.send(cancellation_email(event, sender="Bookings <no-reply@booking.example>"))
    await mailer.close()
    [(sender, recipients, content)] = received.envelopes
    assert sender == "no-reply@booking.example"
    assert recipients == ["anna@xn--hundesalon-mnchen-e3b.example", "buero@xn--tierbetreuung-kln-e0b.example"]
    headers = content.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # the names as encoded words (the body may be 8-bit: the server offers 8BITMIME)
    assert b"To: Anna =?utf-8?q?M=C3=BCller?= <anna@xn--hundesalon-mnchen-e3b.example>" in headers, headers.decode()


async def test_a_non_ascii_local_part_that_the_server_cannot_take_is_permanent_and_the_connection_stays_good(
    ascii_only_smtp: tuple[int, _Received],
) -> None:
    port, received = ascii_only_smtp
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5, connections=1)
    with pytest.raises(PermanentError, match="SMTPUTF8") as refused:
        await mailer.send(a_message("josé@client.example"))  # no ASCII form exists for a local part
    assert "josé" not in str(refused.value)
    assert mailer._idle.qsize() == 1  # the connection went back to the pool, not dropped
    await mailer.send(a_message("ann@client.example"))
    await mailer.close()
    assert [recipients for _, recipients, _ in received.envelopes] == [["ann@client.example"]]


async def test_an_admin_inbox_the_server_cannot_take_costs_the_client_nothing_the_email_goes_without_the_copy(
    ascii_only_smtp: tuple[int, _Received],
) -> None:
    port, received = ascii_only_smtp
    message = a_message("ann@client.example")
    message["Cc"] = "büro@paws.example"  # a non-ASCII local part: no ASCII form, and this server has no SMTPUTF8
    message["Reply-To"] = "büro@paws.example"
    before = REGISTRY.get_sample_value("notifier_admin_copy_skipped_total") or 0.0
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5, connections=1)
    await mailer.send(message)
    await mailer.close()
    [(_, recipients, content)] = received.envelopes
    assert recipients == ["ann@client.example"] and b"Cc:" not in content and b"Reply-To:" not in content
    assert REGISTRY.get_sample_value("notifier_admin_copy_skipped_total") == before + 1


async def test_a_non_ascii_sender_the_server_cannot_take_is_a_setting_to_fix_so_the_email_retries(
    ascii_only_smtp: tuple[int, _Received],
) -> None:
    port, received = ascii_only_smtp
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5, connections=1)
    message = a_message("ann@client.example")
    message.replace_header("From", "Bookings <büro@booking.example>")
    with pytest.raises(TransientError, match="MAIL_FROM"):
        await mailer.send(message)
    await mailer.close()
    assert received.envelopes == []


@pytest.mark.parametrize(
    ("script", "reply", "verdict"),
    [
        ("mail_reply", "553 5.7.1 Sender address not authorised", TransientError),  # our MAIL_FROM: a setting
        ("rcpt_reply", "554 5.7.1 Relay access denied", TransientError),  # our relay settings, for every recipient
        ("rcpt_reply", "550 5.1.1 No such user here", PermanentError),  # about the recipients themselves
        ("data_reply", "550 5.7.1 Message rejected by the sender domain's DMARC policy", TransientError),  # ours
        ("data_reply", "554 5.6.0 Message content rejected", PermanentError),  # about this message
    ],
)
async def test_a_refusal_about_our_settings_retries_and_one_about_the_recipients_parks_the_email(
    ascii_only_smtp: tuple[int, _Received], script: str, reply: str, verdict: type[Exception]
) -> None:
    port, received = ascii_only_smtp
    setattr(received, script, reply)
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5)
    with pytest.raises(verdict) as refused:
        await mailer.send(a_message("ann@client.example"))
    assert type(refused.value) is verdict and "ann@client.example" not in str(refused.value)
    await mailer.close()
    assert received.envelopes == []


async def test_a_recipient_refused_among_accepted_ones_is_counted_and_the_message_is_not_sent_again(
    ascii_only_smtp: tuple[int, _Received],
) -> None:
    port, received = ascii_only_smtp
    received.refuse["admin@paws.example"] = "450 4.2.0 Mailbox busy"
    message = a_message("ann@client.example")
    message["Cc"] = "admin@paws.example"
    before = REGISTRY.get_sample_value("notifier_recipients_refused_total") or 0.0
    mailer = SmtpMailer(host="127.0.0.1", port=port, timeout=5)
    await mailer.send(message)  # accepted for Ann: a retry would send it to her twice
    await mailer.close()
    assert [recipients for _, recipients, _ in received.envelopes] == [["ann@client.example"]]
    assert REGISTRY.get_sample_value("notifier_recipients_refused_total") == before + 1


async def test_a_send_the_server_does_not_answer_in_time_is_transient_and_frees_its_connection(
    servers: Servers, mailpit: Mailpit
) -> None:
    proxy = await FaultProxy(servers.smtp_host, servers.smtp_port).start()
    try:
        proxy.stall()  # connections open, the greeting never comes
        mailer = SmtpMailer(host="127.0.0.1", port=proxy.port, timeout=30, connections=1)
        first = asyncio.create_task(mailer.send(a_message(f"{unique('first')}@x.example"), within=0.5))
        second = asyncio.create_task(mailer.send(a_message(f"{unique('second')}@x.example"), within=0.5))
        for hung in (first, second):  # the second waits for the one connection, then gets its own 0.5 s
            with pytest.raises(TransientError, match="did not accept the message"):
                await hung
        proxy.heal()
        to = f"{unique('third')}@x.example"
        await mailer.send(a_message(to), within=10)  # the one connection slot was given back
        await eventually(lambda: mailpit.messages_to(to))
        await mailer.close()
    finally:
        await proxy.close()


class _CutsTheDatabaseOnAccept:
    """The real mailer; right after the server's 250 it cuts the notifier's database link for half a second (or,
    with `stall`, leaves it open and silent until healed)."""

    def __init__(self, mailer: SmtpMailer, proxy: FaultProxy, *, stall: bool = False) -> None:
        self._mailer = mailer
        self._proxy = proxy
        self._stall = stall

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self._mailer.connection() as real:
            yield _CutOnAccept(real, self._proxy, stall=self._stall)


class _CutOnAccept:
    def __init__(self, real: SmtpConnection, proxy: FaultProxy, *, stall: bool) -> None:
        self._real = real
        self._proxy = proxy
        self._stall = stall

    async def send(
        self,
        message: EmailMessage,
        *,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
        within: float | None = None,
    ) -> None:
        async def cut_then_record() -> None:
            if self._stall:
                self._proxy.stall()
            else:
                self._proxy.cut()
                asyncio.get_running_loop().call_later(0.5, self._proxy.heal)
            assert on_accepted is not None
            await on_accepted()

        await self._real.send(message, on_accepted=cut_then_record, within=within)


@pytest.fixture
async def database_behind_proxy(servers: Servers) -> AsyncIterator[tuple[Any, FaultProxy]]:
    target = urlsplit(servers.mongodb_url)
    proxy = await FaultProxy(target.hostname or "127.0.0.1", target.port or 27017).start()
    client = connect_mongo(with_port(servers.mongodb_url, proxy.port), app_name="test")
    db = client[unique("notifier_blip").replace("-", "_")]
    try:
        yield db, proxy
    finally:
        proxy.heal()
        await client.drop_database(db.name)
        await client.close()
        await proxy.close()


async def test_a_database_blip_right_after_the_250_is_retried_and_sends_no_second_email(
    servers: Servers, mailpit: Mailpit, database_behind_proxy: tuple[Any, FaultProxy]
) -> None:
    db, proxy = database_behind_proxy
    sent = SentEmails(db, lease=timedelta(seconds=30))
    notices = Notices(db)
    event = cancelled_event()
    mailer = SmtpMailer(host=servers.smtp_host, port=servers.smtp_port, timeout=5)
    now = datetime.now(UTC)

    await on_job_request_cancelled(
        event, mailer=_CutsTheDatabaseOnAccept(mailer, proxy), notices=notices, sent=sent, sender="x@y.example"
    )

    key = sent.key("notifier.cancellation_email", str(event.id), event.data.client.email)
    assert await sent.was_sent(key)
    # A redelivery now finds the record, not a claim without one (which, after the lease, would send again).
    assert await sent.claim(key, now=now + timedelta(minutes=5)) == "sent"
    await on_job_request_cancelled(event, mailer=mailer, notices=notices, sent=sent, sender="x@y.example")
    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    await mailer.close()


async def _send_with_the_database_stalled_after_the_250(
    event: Any, mailer: SmtpMailer, proxy: FaultProxy, db: Any, sent: SentEmails, **options: Any
) -> None:
    """Notifier's handler, whose database link goes silent right after the SMTP server's 250 (until healed)."""
    await on_job_request_cancelled(
        event,
        mailer=_CutsTheDatabaseOnAccept(mailer, proxy, stall=True),
        notices=Notices(db),
        sent=sent,
        sender="x@y.example",
        **options,
    )


async def test_a_database_outage_after_the_250_longer_than_the_claim_s_lease_is_waited_out_and_sends_no_second_email(
    servers: Servers, mailpit: Mailpit, database_behind_proxy: tuple[Any, FaultProxy]
) -> None:
    db, proxy = database_behind_proxy
    sent = SentEmails(db, lease=timedelta(seconds=2))  # the send gets 0.8 s, and so would the record without patience
    event = cancelled_event()
    mailer = SmtpMailer(host=servers.smtp_host, port=servers.smtp_port, timeout=5)
    asyncio.get_running_loop().call_later(3.0, proxy.heal)  # the database is away 3 s, past the 2 s lease

    await _send_with_the_database_stalled_after_the_250(event, mailer, proxy, db, sent)

    key = sent.key("notifier.cancellation_email", str(event.id), event.data.client.email)
    assert await sent.was_sent(key)  # a redelivery finds the record: it sends nothing
    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    await mailer.close()


async def test_a_sent_email_whose_record_cannot_be_written_in_time_is_deferred_not_counted_as_a_failed_attempt(
    servers: Servers, mailpit: Mailpit, database_behind_proxy: tuple[Any, FaultProxy]
) -> None:
    db, proxy = database_behind_proxy
    sent = SentEmails(db, lease=timedelta(seconds=2))  # with no more patience than that, the record gets 0.8 s
    event = cancelled_event()
    mailer = SmtpMailer(host=servers.smtp_host, port=servers.smtp_port, timeout=5)

    with pytest.raises(Unavailable, match="could not be recorded"):
        await _send_with_the_database_stalled_after_the_250(event, mailer, proxy, db, sent, record_patience=0)

    proxy.heal()
    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    await mailer.close()


async def test_deliveries_queued_behind_a_busy_connection_all_send_once_their_turn_comes(
    servers: Servers, mailpit: Mailpit, mongo: Any
) -> None:
    # One connection, ~0.25 s a message (0.35 s with the first connect), a 1.5 s lease (so 0.6 s for a send, and
    # claims made before the wait): five deliveries wait up to ~1.4 s for the connection. The wait must not count
    # against the claim's lease (nor fail the delivery). (With a 1 s lease the first send had 0.05 s to spare, and
    # failed on a busy machine.)
    proxy = await FaultProxy(servers.smtp_host, servers.smtp_port, reply_delay=0.05).start()
    db = mongo[unique("notifier_queue").replace("-", "_")]
    try:
        sent = SentEmails(db, lease=timedelta(seconds=1.5))
        mailer = SmtpMailer(host="127.0.0.1", port=proxy.port, timeout=5, connections=1)
        events = [cancelled_event() for _ in range(5)]
        await asyncio.gather(
            *(
                on_job_request_cancelled(e, mailer=mailer, notices=Notices(db), sent=sent, sender="x@y.example")
                for e in events
            )
        )
        for event in events:
            assert len(await mailpit.messages_to(event.data.client.email)) == 1
        await mailer.close()
    finally:
        await proxy.close()
        await mongo.drop_database(db.name)


async def test_a_notice_that_cannot_be_stored_gives_the_email_claim_back_and_sends_nothing(
    servers: Servers, mailpit: Mailpit, mongo: Any, database_behind_proxy: tuple[Any, FaultProxy]
) -> None:
    # The notice and the claim go out together; here the notice's database connection is lost.
    cut_db, proxy = database_behind_proxy
    sent = SentEmails(mongo[cut_db.name], lease=timedelta(seconds=30))
    event = cancelled_event()
    mailer = SmtpMailer(host=servers.smtp_host, port=servers.smtp_port, timeout=5)
    proxy.cut()

    with pytest.raises(PyMongoError):
        await on_job_request_cancelled(event, mailer=mailer, notices=Notices(cut_db), sent=sent, sender="x@y.example")

    key = sent.key("notifier.cancellation_email", str(event.id), event.data.client.email)
    assert await mongo[cut_db.name]["email_claims"].count_documents({"_id": key}) == 0  # given back: a retry sends
    proxy.heal()
    await on_job_request_cancelled(event, mailer=mailer, notices=Notices(cut_db), sent=sent, sender="x@y.example")
    assert len(await mailpit.messages_to(event.data.client.email)) == 1
    assert await mongo[cut_db.name]["notices"].count_documents({"event_id": str(event.id)}) == 1
    await mailer.close()
