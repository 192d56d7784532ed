"""The cancellation email (pure rendering) and an SMTP mailer that reuses its connections."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from email._header_value_parser import get_addr_spec
from email.errors import MessageError, NonASCIILocalPartDefect
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate

import aiosmtplib
import idna
import structlog
from prometheus_client import Counter

from booking_contracts import CloudEvent, JobRequestCancelled
from service_runtime.errors import PermanentError, TransientError
from service_runtime.humanize import day_and_time, instant
from service_runtime.logs import redact

MESSAGE_ID_DOMAIN = "notifier.booking.example"

log = structlog.get_logger(__name__)
ADMIN_COPY_SKIPPED = Counter(
    "notifier_admin_copy_skipped", "Cancellation emails sent without the admin inbox's copy (a malformed admin inbox)."
)
RECIPIENTS_REFUSED = Counter(
    "notifier_recipients_refused", "Recipients the SMTP server refused in a message it accepted for the others."
)


class _OnceHeaderRegistry(HeaderRegistry):
    """The standard registry builds a new class for every header of every message (a quarter of notifier's CPU
    under load); the classes depend on the header's name only, so build each once."""

    @functools.lru_cache(maxsize=128)  # noqa: B019 - one registry for the process's lifetime
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)  # type: ignore[no-any-return]


POLICY = default.clone(header_factory=_OnceHeaderRegistry())


def message_id(event_id: str) -> str:
    """A Message-ID derived from the event id, so a resent email is recognisably the same email. One event makes one
    email, so nothing of the recipient goes in: the header travels with forwarded mail, and even a digest of an
    address can be matched against a list of likely ones."""
    return f"<{event_id}.cancellation@{MESSAGE_ID_DOMAIN}>"


class UnsendableEmail(PermanentError):
    """The event's names or addresses cannot make a well-formed email (a line break in a name, no address...)."""


def cancellation_email(event: CloudEvent[JobRequestCancelled], *, sender: str) -> EmailMessage:
    """The client's confirmation that their job request is cancelled, with the admin inbox in CC.

    Names and addresses go in as `Address` objects, never pasted into a header: a name such as
    `Eve <eve@x.example>, Ann` stays a quoted display name and adds no recipient. Raises UnsendableEmail when the
    event's data cannot make a well-formed email (retrying would not change that).
    """
    try:
        return _cancellation_email(event, sender=sender)
    except (ValueError, MessageError) as exc:  # the email package's verdicts on names, addresses and headers
        # Scrubbed too, in case a verdict of the email package quotes an address: this goes into logs and the DLQ.
        raise UnsendableEmail(_scrubbed(f"cannot write the cancellation email: {exc}")) from exc


def _cancellation_email(event: CloudEvent[JobRequestCancelled], *, sender: str) -> EmailMessage:
    data = event.data
    when = day_and_time(data.requested_date, data.requested_start_time)
    cancelled = instant(data.cancelled_at, data.business.timezone)
    pets = ", ".join(p.name for p in data.pets)
    by = "you" if data.cancelled_by.kind == "client" else f"{data.business.name} on your behalf"
    lines = [
        f"Hello {data.client.name},",
        "",
        "Your job request has been cancelled. Here is what was cancelled:",
        "",
        f"  Service:      {data.service.name}",
        f"  Pets:         {pets}",
        f"  Requested:    {when} ({data.business.timezone})",
        f"  Cancelled:    {cancelled}, by {by}",
    ]
    if data.reason:
        lines.append(f"  Reason:       {data.reason}")
    lines += [
        f"  Reference:    {data.job_request_id}",
        "",
        "If you cancelled by mistake, please submit a new request in the client portal.",
        "",
        data.business.name,
    ]
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = f"Job request cancelled: {data.service.name} on {when}"
    msg["From"] = _header("From", sender)
    msg["To"] = _address(data.client.email, role="the client's email", display_name=data.client.name)
    try:
        cc, reply_to = _header("Cc", data.business.admin_email), _header("Reply-To", data.business.admin_email)
    except (ValueError, MessageError):
        # A malformed admin inbox (catalogue data) must not cost the client their confirmation: it goes without the
        # copy, and the admin still gets the HOME notice.
        log.warning("email.admin_inbox_unusable", business_id=data.business.id)
        ADMIN_COPY_SKIPPED.inc()
    else:
        msg["Cc"], msg["Reply-To"] = cc, reply_to
    msg["Date"] = formatdate(data.cancelled_at.timestamp(), usegmt=True)
    msg["Message-ID"] = message_id(str(event.id))
    msg["X-Job-Request-Id"] = data.job_request_id
    msg["X-Event-Id"] = str(event.id)
    msg.set_content("\n".join(lines))
    return msg


@functools.lru_cache(maxsize=4096)
def _header(name: str, value: str) -> BaseHeader:
    """A parsed address header for a value every email of a business repeats: the sender (as configured, a full
    header value) or the admin inbox (one bare address, checked as `_address` checks the client's). Parsing address
    headers was a third of building an email; headers are immutable, so messages share one, and a message takes a
    header object of its own name as it is."""
    # header_store_parse is what `msg[name] = value` runs: it refuses a line break in a string value (MAIL_FROM).
    _, header = POLICY.header_store_parse(name, value if name == "From" else _address(value, role="the admin inbox"))
    return header  # type: ignore[no-any-return]


def _address(addr_spec: str, *, role: str, display_name: str = "") -> Address:
    """One mailbox, or ValueError: what `Address(addr_spec=...)` checks, except that a non-ASCII local part (josé@…)
    is fine (it goes out with SMTPUTF8, as the server allows) where that constructor refuses it.

    A domain in Unicode (hundesalon-münchen.de) is written in its ASCII form (xn--…; IDNA 2008 with the UTS 46
    mapping, as browsers and mail clients do), in the header and the envelope: every SMTP server takes that, where
    the Unicode form needs SMTPUTF8, which many providers do not offer. The ASCII form is checked again as an
    address (the mapping may turn an ideographic full stop into a trailing dot, say).

    The error names the address by its `role`, never in clear: it goes into logs and dead-letter headers.
    """
    address = _mailbox(addr_spec, display_name)
    if address is None:
        raise ValueError(f"{role} is not one well-formed address")
    if address.domain.isascii():
        return address
    try:
        domain = idna.encode(address.domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{role} has an internationalized domain that is not valid") from exc
    ascii_address = _mailbox(Address(username=address.username, domain=domain).addr_spec, display_name)
    if ascii_address is None:
        raise ValueError(f"{role} has an internationalized domain that is not valid")
    return ascii_address


def _mailbox(addr_spec: str, display_name: str) -> Address | None:
    """The one mailbox `addr_spec` is, exactly as written, or None."""
    try:
        spec, rest = get_addr_spec(addr_spec)  # the parser Address itself uses
        defects = [d for d in spec.all_defects if not isinstance(d, NonASCIILocalPartDefect)]
    except (MessageError, IndexError, AttributeError):  # its own failures on some inputs ("", "a@", "a@[1", "<a@b>")
        return None
    if rest or defects or not spec.domain or not spec.local_part:
        return None
    address = Address(display_name=display_name, username=spec.local_part, domain=spec.domain)
    # Not as written when the parser dropped something (a comment, a space in the domain...).
    return address if address.addr_spec == addr_spec else None


class SmtpMailer:
    """Sends messages over a few reused SMTP connections; failures become Transient or Permanent errors."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
        connections: int = 4,
    ) -> None:
        self._options = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "start_tls": starttls,
            "timeout": timeout,
        }
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[SmtpConnection]:
        """Wait for one of the connections (as long as it takes) and hold it for one message.

        A caller that claimed the email before waiting checks how much of the claim's time is left once it has the
        connection (notifier.handlers).
        """
        async with self._slots:
            yield SmtpConnection(self)

    async def send(
        self,
        message: EmailMessage,
        *,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
        within: float | None = None,
    ) -> None:
        """Wait for a connection and send `message` on it (SmtpConnection.send)."""
        async with self.connection() as connection:
            await connection.send(message, on_accepted=on_accepted, within=within)

    async def _transaction(self, message: EmailMessage) -> None:
        smtp = self._idle.get_nowait() if not self._idle.empty() else None
        sending = False
        try:
            if smtp is None or not smtp.is_connected:
                smtp = aiosmtplib.SMTP(**self._options)  # type: ignore[arg-type]
                await smtp.connect()
            sending = True
            # Refused recipients among accepted ones do not make a retry right: the message went out once (a retry
            # would send it again to the others). They are logged (redacted) and counted.
            refused, _ = await smtp.send_message(message)
            if refused:
                RECIPIENTS_REFUSED.inc(len(refused))
                log.warning(
                    "email.recipients_refused",
                    replies=[_scrubbed(f"{r.code} {r.message}") for r in refused.values()],
                    recipients=[redact(address) for address in refused],
                )
        except (aiosmtplib.SMTPException, OSError) as exc:
            if sending and isinstance(exc, aiosmtplib.SMTPNotSupported) and smtp is not None:
                # aiosmtplib raises it while sending for one reason only, before the transaction's first command:
                # the server does not offer SMTPUTF8, which an address with a non-ASCII local part (josé@…) needs.
                # The connection is still good.
                self._idle.put_nowait(smtp)
                if not _ascii_addresses(message, "From"):  # our MAIL_FROM: a setting to fix, then the retry goes
                    raise TransientError(
                        "the configured sender (MAIL_FROM) is not all ASCII and the SMTP server does not offer "
                        "SMTPUTF8 (write its domain in its xn-- form)"
                    ) from exc
                if _ascii_addresses(message, "To") and not _ascii_addresses(message, "Cc"):
                    # Only the admin inbox's copy needs it: the client gets their confirmation without the copy (the
                    # admin still gets the HOME notice).
                    del message["Cc"], message["Reply-To"]
                    ADMIN_COPY_SKIPPED.inc()
                    log.warning("email.admin_copy_skipped", reason="the SMTP server does not offer SMTPUTF8")
                    await self._transaction(message)
                    return
                # The client's address: this server will never take this email.
                raise PermanentError(
                    "the SMTP server does not offer SMTPUTF8, which an address with a non-ASCII local part needs"
                ) from exc
            await _drop(smtp, politely=isinstance(exc, aiosmtplib.SMTPResponseException))
            raise _verdict(exc) from exc
        except BaseException:  # cancelled (the deadline, a shutdown): the session is in an unknown state
            await _drop(smtp, politely=False)
            raise
        self._idle.put_nowait(smtp)

    async def close(self) -> None:
        """Quit every idle connection."""
        while not self._idle.empty():
            await _drop(self._idle.get_nowait())


class SmtpConnection:
    """One connection slot of a mailer, held for one message."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer

    async def send(
        self,
        message: EmailMessage,
        *,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
        within: float | None = None,
    ) -> None:
        """Send one message; `on_accepted` runs right after the server's 250, while the connection is still held.

        Holding it while the caller records the send keeps the window in which a crash resends an email to at most
        one message per connection. `within` bounds the SMTP transaction (TransientError when it runs out: the
        caller's claim on the email must outlast it), not `on_accepted`.
        """
        try:
            async with asyncio.timeout(within):
                await self._mailer._transaction(message)
        except TimeoutError as exc:  # the deadline's: the server's own timeouts come out as TransientError
            raise TransientError(f"SMTP did not accept the message within {within} s") from exc
        if on_accepted is not None:
            await on_accepted()  # no deadline here: what the server accepted must be recorded


def _ascii_addresses(message: EmailMessage, header: str) -> bool:
    """Whether every address of a header (none: True) can go without SMTPUTF8."""
    return all(address.addr_spec.isascii() for address in getattr(message[header], "addresses", ()))


# Replies about the server or our settings, whatever the command: a retry may succeed once it is fixed.
_NOT_ABOUT_THE_MESSAGE = {530, 534, 535, 538}  # authentication required / too weak / refused / encryption required


def _about_the_message(code: int, message: str) -> bool:
    """A 5xx refusal of a recipient that is about the recipient (no such mailbox...), not about us: an enhanced status
    of class 5.7 (security or policy: relaying denied, sender not authorised) says our settings, which a fix mends."""
    return 500 <= code < 600 and code not in _NOT_ABOUT_THE_MESSAGE and not message.lstrip().startswith("5.7.")


_ADDRESS = re.compile(r"""(?:"[^"\r\n]*"|[^\s<>(),;:"\[\]]+)@(?:\[[^\]\s]*\]|[^\s<>(),;:'"\[\]]+)""")


def _scrubbed(text: str) -> str:
    """`text` (a server's reply, an exception's words) with every email address in it redacted: these errors go into
    logs and dead-letter headers, where emails are never written in clear (design.md)."""

    def digest(match: re.Match[str]) -> str:
        address = match.group(0)
        core = address.rstrip(".")  # a sentence's full stop is not part of the address
        return redact(core) + address[len(core) :]

    return _ADDRESS.sub(digest, text)


def _verdict(exc: aiosmtplib.SMTPException | OSError) -> Exception:
    """PermanentError for a 5xx about this message (all its recipients, its content); TransientError for everything
    else: 4xx, connection, greeting, HELO, AUTH and TLS failures, a refused MAIL FROM, and 5xx replies of class 5.7
    (security or policy: relaying denied, sender not authorised, DMARC): the server or our settings, which a retry
    after a fix survives; parking every email at once would not."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        if codes and all(_about_the_message(r.code, r.message) for r in exc.recipients):
            replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            return PermanentError(_scrubbed(f"SMTP refused every recipient: {replies}"))
        return TransientError(_scrubbed(f"SMTP refused the recipients for now: {codes}"))
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):  # our MAIL_FROM (unverified, not authorised): a setting to fix
        return TransientError(_scrubbed(f"SMTP refused the configured sender: {exc.code} {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        if _about_the_message(exc.code, exc.message):
            return PermanentError(_scrubbed(f"SMTP refused the message: {exc.code} {exc.message}"))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return TransientError(_scrubbed(f"SMTP said {exc.code} {exc.message}"))
    return TransientError(_scrubbed(f"SMTP unavailable: {exc!r}"))


async def _drop(smtp: aiosmtplib.SMTP | None, *, politely: bool = True) -> None:
    """Close a connection we will not reuse: with QUIT when the session is in a known state, else at once."""
    if smtp is None or not smtp.is_connected:
        return
    if politely:
        with contextlib.suppress(Exception):  # the connection is going away anyway
            await smtp.quit()
    if smtp.is_connected:
        smtp.close()
