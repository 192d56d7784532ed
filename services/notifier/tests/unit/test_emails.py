from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifier.emails import UnsendableEmail, cancellation_email, message_id
from notifier.handlers import notice_for
from service_runtime.logs import redact
from tests.support.events import cancelled_event


def test_the_confirmation_goes_to_the_client_with_the_admin_inbox_in_cc() -> None:
    event = cancelled_event()
    mail = cancellation_email(event, sender="Bookings <no-reply@booking.example>")
    assert event.data.client.email in mail["To"]
    assert mail["Cc"] == event.data.business.admin_email


def test_the_email_shows_service_pets_requested_time_and_cancellation_time_in_the_business_timezone() -> None:
    event = cancelled_event(
        business={"id": "b", "name": "Paws NY", "admin_email": "a@x.example", "timezone": "America/New_York"}
    )
    body = cancellation_email(event, sender="x@y.example").get_content()
    assert "Dog Walk 30 min" in body and "Rex" in body
    assert "Thu 3 Dec 2026, 09:00 (America/New_York)" in body
    # 16:20:05 UTC is 11:20:05 in New York in November (EST).
    assert "Wed 25 Nov 2026 at 11:20:05 EST" in body


def test_the_message_id_is_derived_from_the_event_id() -> None:
    event = cancelled_event()
    mail = cancellation_email(event, sender="x@y.example")
    assert mail["Message-ID"] == message_id(str(event.id))
    assert str(event.id) in mail["Message-ID"]


def test_the_message_id_is_well_formed_and_names_no_part_of_the_address() -> None:
    for email in ('"ann smith"@client.example', "ann.secret@client.example", "josé@client.example"):
        event = cancelled_event(client={"id": "c1", "name": "Ann", "email": email})
        mail = cancellation_email(event, sender="x@y.example")
        assert not mail["Message-ID"].defects and mail["Message-ID"].isascii()
        assert "ann" not in mail["Message-ID"] and "jos" not in mail["Message-ID"]


def test_the_reason_appears_only_when_given() -> None:
    assert "Reason:" not in cancellation_email(cancelled_event(), sender="x@y.example").get_content()
    with_reason = cancelled_event(reason="Going away")
    assert "Reason:       Going away" in cancellation_email(with_reason, sender="x@y.example").get_content()


def test_the_notice_names_client_service_requested_time_request_id_and_cancellation_time() -> None:
    event = cancelled_event()
    notice = notice_for(event, now=datetime(2026, 11, 25, tzinfo=UTC))
    assert notice["event_id"] == str(event.id) and notice["read_at"] is None
    for part in (
        "Ann Example",
        "Dog Walk 30 min",
        "Thu 3 Dec 2026, 09:00",
        event.data.job_request_id,
        "25 Nov 2026 at 16:20:05 GMT",
    ):
        assert part in notice["message"]


def test_the_notice_title_says_who_cancelled_the_client_or_an_admin() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    by_client = notice_for(cancelled_event(), now=now)
    admin = cancelled_event(cancelled_by={"kind": "admin", "id": "boss"})
    assert by_client["title"] == "Ann Example cancelled a job request"
    assert notice_for(admin, now=now)["title"] == "A job request of Ann Example was cancelled by an admin"


def test_the_same_event_always_makes_the_same_notice_id() -> None:
    event = cancelled_event()
    now = datetime(2026, 11, 25, tzinfo=UTC)
    assert notice_for(event, now=now)["_id"] == notice_for(event, now=now)["_id"]


def test_a_client_name_that_looks_like_an_address_list_adds_no_recipient() -> None:
    event = cancelled_event(client={"id": "c1", "name": "Mallory <m@evil.example>, Ann", "email": "ann@client.example"})
    mail = cancellation_email(event, sender="x@y.example")
    assert [a.addr_spec for a in mail["To"].addresses] == ["ann@client.example"]
    assert mail["To"].addresses[0].display_name == "Mallory <m@evil.example>, Ann"


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("Eve\r\nBcc: x@evil.example", "eve@client.example"),
        ("Ann", "ann@client.example, m@evil.example"),
        ("Ann", "ann\r\nBcc: x@evil.example"),
        ("Ann", "no-domain"),
        ("Ann", "two words@client.example"),
        ("Ann", "a@evil.example\u00a0.victim.example"),
        ("Ann", "a(comment)@client.example"),
        ("Ann", '""@client.example'),
        ("Ann", "anna@münchen-.example"),  # a label may not end with a hyphen (IDNA)
        ("Ann", "anna.secret@victim.example。"),  # an ideographic full stop: a trailing dot once mapped
        ("Ann", "<anna.secret@victim.example>"),
        ("Ann", ":anna.secret@victim.example"),
        ("Ann", "anna.secret@,victim.example"),
        ("Ann", ""),
        ("Ann", "anna.secret@"),
        ("Ann", "anna.secret@[1.2.3.4"),
    ],
)
def test_a_name_or_address_that_cannot_make_a_well_formed_email_is_unsendable(name: str, email: str) -> None:
    event = cancelled_event(client={"id": "c1", "name": name, "email": email})
    with pytest.raises(UnsendableEmail) as refused:
        cancellation_email(event, sender="x@y.example")
    # The reason goes into logs and the dead-letter header: it names the address, it does not quote it.
    assert "@" not in str(refused.value) and "secret" not in str(refused.value), str(refused.value)


def _business(admin_email: str) -> dict[str, str]:
    return {"id": "b1", "name": "Happy Paws", "admin_email": admin_email, "timezone": "Europe/London"}


def test_each_email_carries_its_own_business_admin_in_cc_and_reply_to_however_often_it_repeats() -> None:
    for admin in ["one@happypaws.example", "two@happypaws.example", "one@happypaws.example"]:
        mail = cancellation_email(cancelled_event(business=_business(admin)), sender="Bookings <no-reply@x.example>")
        assert [a.addr_spec for a in mail["Cc"].addresses] == [admin]
        assert [a.addr_spec for a in mail["Reply-To"].addresses] == [admin]
        assert str(mail["From"]) == "Bookings <no-reply@x.example>"


@pytest.mark.parametrize(
    "admin",
    [
        "a@x.example, m@evil.example",
        "admin\r\nBcc: x@evil.example",
        "no-domain",
        "<office.secret@x.example>",
        ":office.secret@x.example",
    ],
)
def test_a_malformed_admin_inbox_costs_the_client_nothing_the_email_goes_without_the_copy_every_time(
    admin: str,
) -> None:
    for _ in range(2):  # not only the first time (the parsed admin headers are cached)
        mail = cancellation_email(cancelled_event(business=_business(admin)), sender="x@y.example")
        [to] = mail["To"].addresses
        assert to.addr_spec.endswith("@client.example")
        assert mail["Cc"] is None and mail["Reply-To"] is None
        assert "secret" not in mail.as_string() and "evil" not in mail.as_string()


def test_a_configured_sender_with_a_line_break_is_refused_and_adds_no_header() -> None:
    with pytest.raises(UnsendableEmail):
        cancellation_email(cancelled_event(), sender="a@b.example\r\nBcc: evil@x.example")


def test_an_address_with_a_non_ascii_local_part_is_written_as_it_is() -> None:
    event = cancelled_event(client={"id": "c1", "name": "José", "email": "josé@client.example"})
    mail = cancellation_email(event, sender="x@y.example")
    assert [a.addr_spec for a in mail["To"].addresses] == ["josé@client.example"]


def test_a_unicode_domain_is_written_in_its_ascii_form_for_the_client_and_the_admin_inbox() -> None:
    event = cancelled_event(
        client={"id": "c1", "name": "Anna", "email": "anna@hundesalon-münchen.example"},
        business=_business("büro@straße.example"),
    )
    mail = cancellation_email(event, sender="x@y.example")
    assert [a.addr_spec for a in mail["To"].addresses] == ["anna@xn--hundesalon-mnchen-e3b.example"]
    # A non-ASCII local part stays as it is (it needs SMTPUTF8 whatever is done); only the domain has an ASCII form.
    assert [a.addr_spec for a in mail["Cc"].addresses] == ["büro@xn--strae-oqa.example"]
    assert [a.addr_spec for a in mail["Reply-To"].addresses] == ["büro@xn--strae-oqa.example"]


def test_error_texts_name_no_email_address_in_clear() -> None:
    from notifier.emails import _scrubbed

    addresses = ["ann@client.example", "josé@client.example", '"john doe"@client.example', "o'brien@client.example"]
    addresses.append("root@[192.0.2.1]")
    text = _scrubbed(
        '550 5.1.1 <ann@client.example>: no such user (josé@client.example); also "john doe"@client.example, '
        "o'brien@client.example and root@[192.0.2.1]. Try ann@client.example."
    )
    assert not any(address in text for address in addresses), text
    assert "john" not in text and "brien" not in text and "root" not in text, text
    assert text.startswith("550 5.1.1 <hmac:") and "no such user" in text
    assert text.endswith(f"Try {redact('ann@client.example')}."), text  # the same digest as everywhere else
