"""The help article clicked through in Debian's Chromium: the client portal and the admin pages on the real stack."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import BrowserContext, Locator, Page, Request, Route, expect

from service_runtime.auth import Principal, TokenCodec
from tests.support.mailpit import Mailpit
from tests.support.waiting import eventually

from .conftest import AUTH_SECRET, Stack

pytestmark = pytest.mark.browser

NewContext = Callable[..., Awaitable[BrowserContext]]
LONDON = ZoneInfo("Europe/London")


# ---- helpers ----


def london_today() -> date:
    return datetime.now(LONDON).date()


async def submit(stack: Stack, day: date, start: str, client: int = 0) -> dict[str, Any]:
    base = stack.booking.url
    headers = stack.client_headers(client)
    services = (await stack.http.get(f"{base}/v1/portal/services", headers=headers)).json()
    pets = (await stack.http.get(f"{base}/v1/portal/pets", headers=headers)).json()
    walk = next(s for s in services if s["name"].startswith("Dog Walk"))
    dog = next(p for p in pets if p["species"] == "dog")
    response = await stack.http.post(
        f"{base}/v1/portal/job-requests",
        headers=headers,
        json={"service_id": walk["id"], "date": day.isoformat(), "start_time": start, "pet_ids": [dog["id"]]},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def job_request(stack: Stack, request_id: str, client: int = 0) -> dict[str, Any]:
    response = await stack.http.get(
        f"{stack.booking.url}/v1/portal/job-requests/{request_id}", headers=stack.client_headers(client)
    )
    return dict(response.json())


async def notices_about(stack: Stack, request_id: str) -> list[dict[str, Any]]:
    response = await stack.http.get(
        f"{stack.notifier.url}/v1/admin/notices", params={"limit": 200}, headers=stack.admin_headers()
    )
    return [n for n in response.json()["notices"] if n["job_request_id"] == request_id]


async def open_portal(context: BrowserContext, stack: Stack, token: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{stack.booking.url}/portal/#token={token}")
    await expect(page.locator("#calendar-body button").first).to_be_visible()
    return page


async def show_month(page: Page, day: date) -> None:
    """Go to the day's month with the previous/next buttons."""
    title = f"{day:%B %Y}"
    for _ in range(3):
        current = await page.locator("#month-title").text_content()
        if current == title:
            return
        shown = datetime.strptime(str(current), "%B %Y").date()
        await page.get_by_role("button", name="Next month" if shown < day else "Previous month").click()
        await expect(page.locator("#month-title")).not_to_have_text(str(current))
    await expect(page.locator("#month-title")).to_have_text(title)


def day_button(page: Page, day: date) -> Locator:
    return page.locator(f'#calendar-body button[data-day="{day.isoformat()}"]')


def job_item(page: Page, request_id: str) -> Locator:
    return page.locator(f'#day-jobs li[data-job-request="{request_id}"]')


async def open_cancel_dialog(stack: Stack, context: BrowserContext, request: dict[str, Any]) -> tuple[Page, Locator]:
    page = await open_portal(context, stack, stack.client(0)["token"])
    day = date.fromisoformat(request["date"])
    await show_month(page, day)
    await day_button(page, day).click()
    await job_item(page, request["id"]).get_by_role("button", name=re.compile(r"^cancel")).click()
    dialog = page.get_by_role("dialog", name="Cancel this job request?")
    await expect(dialog).to_be_visible()
    return page, dialog


def in_london(moment: str) -> str:
    """How the pages write an instant: `Wed, 25 Nov 2026, 16:20:05 GMT`."""
    local = datetime.fromisoformat(moment).astimezone(LONDON)
    return f"{local:%a}, {local.day} {local:%b %Y}, {local:%H:%M:%S} {local:%Z}"


async def reload_until_visible(page: Page, locator: Locator, timeout: float = 15) -> None:
    async def shown() -> bool:
        if await locator.count():
            return True
        await page.reload()
        await page.wait_for_load_state("networkidle")
        return await locator.count() > 0

    await eventually(shown, timeout=timeout, interval=0.5)


# ---- the tests ----


async def test_a_client_cancels_a_job_request_and_the_admin_sees_it_live_in_home_logs_and_email(
    stack: Stack, new_context: NewContext, mailpit: Mailpit, screenshots: Path
) -> None:
    ann = stack.client(0)
    day = london_today() + timedelta(days=8)
    request = await submit(stack, day, "09:00")

    # The admin's HOME is open (and live) in its own browser context before the client does anything.
    admin = await new_context(viewport={"width": 1100, "height": 900})
    home = await admin.new_page()
    await home.goto(f"{stack.booking.url}/admin/#token={stack.admin_token}")
    await expect(home.locator("#live-status")).to_have_text(re.compile(r"^Live"))
    unread_before = int(str(await home.locator("#unread-count").text_content()).split()[0])
    await home.evaluate("window.sameDocument = true")

    # "go to portal" from the client's blue snapshot panel gives the portal link for that client.
    client_page = await admin.new_page()
    await client_page.goto(f"{stack.booking.url}/admin/client.html?id={ann['id']}")
    await expect(client_page.locator("#client-name")).to_have_text(ann["name"])
    go_to_portal = client_page.get_by_role("link", name=re.compile(r"^go to portal"))
    await expect(go_to_portal).to_have_attribute("href", re.compile(r"^/portal/#token="))
    portal_url = await go_to_portal.get_attribute("href")

    client = await new_context(viewport={"width": 1100, "height": 900})
    portal = await client.new_page()
    await portal.goto(f"{stack.booking.url}{portal_url}")
    await expect(portal.locator("#calendar-body button").first).to_be_visible()
    await expect(portal.locator('#calendar-body td[aria-current="date"]')).to_have_count(
        1 if f"{london_today():%B %Y}" == await portal.locator("#month-title").text_content() else 0
    )
    await show_month(portal, day)
    await portal.evaluate("window.sameDocument = true")

    # In the month, the requested job shows "REQ:" before it; scheduled jobs do not.
    cell = day_button(portal, day)
    await expect(cell).to_contain_text("REQ: Dog Walk 30 min 09:00")
    scheduled_labels = await portal.locator("#calendar-body .entry.scheduled").all_text_contents()
    assert scheduled_labels and not any(label.startswith("REQ:") for label in scheduled_labels)
    await portal.screenshot(path=screenshots / "portal-month.png", full_page=True)

    # Click the day: all services booked or requested that day, each with service, time, pets and status.
    await cell.click()
    item = job_item(portal, request["id"])
    for text in ("Dog Walk 30 min", "09:00", "Rex", "requested"):
        await expect(item).to_contain_text(text)
    await portal.screenshot(path=screenshots / "portal-day.png", full_page=True)

    # "cancel" → confirmation → "Yes, cancel job request".
    await item.get_by_role("button", name=re.compile(r"^cancel")).click()
    dialog = portal.get_by_role("dialog", name="Cancel this job request?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="close")).to_be_visible()
    await dialog.get_by_label("Reason (optional)").fill("Plans changed")
    await portal.screenshot(path=screenshots / "portal-dialog.png")
    await dialog.get_by_role("button", name="Yes, cancel job request").click()

    # The entry shows as cancelled at once, and the month no longer shows it as REQ:, without a reload.
    await expect(dialog).to_be_hidden()
    await expect(item).to_have_attribute("data-status", "cancelled")
    await expect(item).to_contain_text("Cancelled")
    await expect(item.get_by_role("button")).to_have_count(0)
    await expect(cell).not_to_contain_text("REQ: Dog Walk 30 min 09:00")
    assert await portal.evaluate("window.sameDocument") is True
    cancelled = await job_request(stack, request["id"])
    assert cancelled["status"] == "cancelled"
    await expect(item).to_contain_text(in_london(cancelled["cancelled_at"]))

    # HOME shows the notice live (no reload): unread, with the count up; "mark as read" brings it down.
    notice = home.locator(f'#notices li[data-job-request="{request["id"]}"]')
    await expect(notice).to_be_visible(timeout=20_000)
    await expect(notice).to_contain_text(f"{ann['name']} cancelled a job request")
    await expect(notice).to_contain_text("unread")
    await expect(notice).to_contain_text("Reason: Plans changed")
    await expect(notice).to_contain_text(in_london(cancelled["cancelled_at"]))
    await expect(home.locator("#unread-count")).to_have_text(f"{unread_before + 1} unread")
    assert await home.evaluate("window.sameDocument") is True
    await home.screenshot(path=screenshots / "admin-home.png", full_page=True)
    await notice.get_by_role("button", name=re.compile(r"^mark as read")).click()
    await expect(home.locator("#unread-count")).to_have_text(f"{unread_before} unread")
    await expect(notice).not_to_contain_text("unread")

    # The client's LOGS: the cancellation with its date and timestamp (business timezone).
    entry = client_page.locator(f'#logs-body tr[data-job-request="{request["id"]}"][data-type="job_request.cancelled"]')
    await reload_until_visible(client_page, entry)
    await expect(entry).to_contain_text(in_london(cancelled["cancelled_at"]))
    await client_page.screenshot(path=screenshots / "client-logs.png", full_page=True)

    # The client's email, with the company admin inbox in CC.
    [mail] = await eventually(lambda: mailpit.search(request["id"]), timeout=15)
    assert [a["Address"] for a in mail["To"]] == ["ann@client.example"]
    assert [a["Address"] for a in mail["Cc"]] == ["admin@happypaws.example"]

    # The job request processing screen: gone from "requested", under "cancelled" with who, when and why.
    screen = await admin.new_page()
    await screen.goto(f"{stack.booking.url}/admin/job-requests.html")
    await expect(screen.locator("#requests-caption")).to_have_text("Job requests that are requested")
    await expect(screen.locator(f'#requests-body tr[data-job-request="{request["id"]}"]')).to_have_count(0)
    await screen.get_by_label("cancelled").check()
    row = screen.locator(f'#requests-body tr[data-job-request="{request["id"]}"]')
    await expect(row).to_contain_text(f"Cancelled by the client ({ann['name']})")
    await expect(row).to_contain_text(in_london(cancelled["cancelled_at"]))
    await expect(row).to_contain_text("Reason: Plans changed")
    await screen.screenshot(path=screenshots / "admin-job-requests-cancelled.png", full_page=True)


async def test_close_and_escape_change_nothing(stack: Stack, new_context: NewContext, mailpit: Mailpit) -> None:
    request = await submit(stack, london_today() + timedelta(days=9), "11:00")
    context = await new_context()
    page, dialog = await open_cancel_dialog(stack, context, request)
    posts: list[str] = []

    def record(sent: Request) -> None:
        if sent.method == "POST":
            posts.append(sent.url)

    page.on("request", record)
    await dialog.get_by_role("button", name="close").click()
    await expect(dialog).to_be_hidden()
    cancel_button = job_item(page, request["id"]).get_by_role("button", name=re.compile(r"^cancel"))
    await expect(cancel_button).to_be_focused()
    await cancel_button.click()
    await expect(dialog).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "requested")
    assert posts == []

    # Nothing downstream: a request cancelled afterwards is emailed and noticed; the closed one is not.
    marker = await submit(stack, london_today() + timedelta(days=9), "12:00")
    await stack.http.post(
        f"{stack.booking.url}/v1/portal/job-requests/{marker['id']}/cancel", headers=stack.client_headers()
    )
    await eventually(lambda: mailpit.search(marker["id"]), timeout=15)
    await eventually(lambda: notices_about(stack, marker["id"]), timeout=15)
    assert await mailpit.search(request["id"]) == []
    assert await notices_about(stack, request["id"]) == []
    assert (await job_request(stack, request["id"]))["status"] == "requested"


async def test_a_scheduled_job_has_no_cancel_button_and_scheduling_during_the_dialog_gives_a_clear_409(
    stack: Stack, new_context: NewContext, screenshots: Path
) -> None:
    day = london_today() + timedelta(days=10)
    request = await submit(stack, day, "10:30")
    already = await submit(stack, day, "15:00")
    scheduled = await stack.http.post(
        f"{stack.booking.url}/v1/admin/job-requests/{already['id']}/schedule", headers=stack.admin_headers()
    )
    assert scheduled.status_code == 200

    client = await new_context()
    page, dialog = await open_cancel_dialog(stack, client, request)
    scheduled_item = job_item(page, already["id"])
    await expect(scheduled_item).to_have_attribute("data-status", "scheduled")
    await expect(scheduled_item.get_by_role("button")).to_have_count(0)
    await expect(scheduled_item).to_contain_text("Scheduled jobs are cancelled another way")

    # Meanwhile the admin schedules the request on the job request processing screen.
    admin = await new_context()
    screen = await admin.new_page()
    await screen.goto(f"{stack.booking.url}/admin/job-requests.html#token={stack.admin_token}")
    row = screen.locator(f'#requests-body tr[data-job-request="{request["id"]}"]')
    await row.get_by_role("button", name=re.compile(r"^schedule")).click()
    await expect(screen.locator("#done")).to_contain_text("Scheduled: Dog Walk 30 min")
    await expect(row).to_have_count(0)

    await dialog.get_by_role("button", name="Yes, cancel job request").click()
    alert = dialog.get_by_role("alert")
    await expect(alert).to_contain_text("was scheduled meanwhile")
    await expect(alert).to_contain_text("Scheduled jobs are cancelled another way")
    await expect(dialog.get_by_role("button", name="Yes, cancel job request")).to_be_disabled()
    await page.screenshot(path=screenshots / "portal-409.png")
    await dialog.get_by_role("button", name="close").click()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "scheduled")
    await expect(job_item(page, request["id"]).get_by_role("button")).to_have_count(0)
    assert (await job_request(stack, request["id"]))["status"] == "scheduled"


async def test_a_client_cancels_with_the_keyboard_alone(stack: Stack, new_context: NewContext) -> None:
    day = london_today() + timedelta(days=11)
    request = await submit(stack, day, "08:30")
    page = await open_portal(await new_context(), stack, stack.client(0)["token"])
    keys = page.keyboard

    async def tab_to(predicate: str, limit: int = 120) -> None:
        for _ in range(limit):
            await keys.press("Tab")
            if await page.evaluate(predicate):
                return
        raise AssertionError(f"Tab never reached {predicate}")

    if await page.locator("#month-title").text_content() != f"{day:%B %Y}":
        await tab_to("document.activeElement.id === 'next-month'")
        await keys.press("Enter")
        await expect(page.locator("#month-title")).to_have_text(f"{day:%B %Y}")
    await tab_to(f"document.activeElement.dataset.day === '{day.isoformat()}'")
    await keys.press("Enter")
    await expect(page.locator("#day-panel")).to_be_focused()
    await tab_to(
        f"document.activeElement.closest('li')?.dataset.jobRequest === '{request['id']}'"
        " && document.activeElement.classList.contains('cancel-button')"
    )
    await keys.press("Enter")
    dialog = page.get_by_role("dialog", name="Cancel this job request?")
    reason = dialog.get_by_label("Reason (optional)")
    yes = dialog.get_by_role("button", name="Yes, cancel job request")
    close = dialog.get_by_role("button", name="close")
    await expect(reason).to_be_focused()

    # Focus stays in the dialog both ways; Escape is "close" and gives focus back to "cancel".
    for expected in (yes, close, reason):
        await keys.press("Tab")
        await expect(expected).to_be_focused()
    await keys.press("Shift+Tab")
    await expect(close).to_be_focused()
    await keys.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"]).get_by_role("button", name=re.compile(r"^cancel"))).to_be_focused()

    await keys.press("Enter")
    await expect(reason).to_be_focused()
    await keys.type("Typed with the keyboard")
    await keys.press("Tab")
    await expect(yes).to_be_focused()
    await keys.press("Enter")
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "cancelled")
    await expect(page.locator(f"#cancelled-{request['id']}")).to_be_focused()
    cancelled = await job_request(stack, request["id"])
    assert cancelled["cancel_reason"] == "Typed with the keyboard"


async def test_a_dialog_closed_and_opened_again_at_once_still_cancels_its_job_request(
    stack: Stack, new_context: NewContext
) -> None:
    # The dialog's "close" event is a task of its own: closing then opening in one go (a quick Escape, Enter) used
    # to let the late event forget which job request the new dialog was about ("Cannot read properties of null").
    request = await submit(stack, london_today() + timedelta(days=13), "09:15")
    page, dialog = await open_cancel_dialog(stack, await new_context(), request)
    cancel = job_item(page, request["id"]).get_by_role("button", name=re.compile(r"^cancel"))
    await cancel.evaluate("(button) => { document.getElementById('cancel-dialog').close(); button.click(); }")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Reason (optional)")).to_be_focused()
    await dialog.get_by_role("button", name="Yes, cancel job request").click()
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "cancelled")
    assert (await job_request(stack, request["id"]))["status"] == "cancelled"


async def test_the_portal_says_clearly_when_the_network_is_down_or_the_session_has_expired(
    stack: Stack, new_context: NewContext, screenshots: Path
) -> None:
    request = await submit(stack, london_today() + timedelta(days=12), "13:00")
    page, dialog = await open_cancel_dialog(stack, await new_context(), request)
    await page.route("**/cancel", lambda route: route.abort("internetdisconnected"))
    await dialog.get_by_role("button", name="Yes, cancel job request").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("Could not reach the booking service")
    await expect(dialog).to_be_visible()
    await page.unroute("**/cancel")
    await dialog.get_by_role("button", name="Yes, cancel job request").click()
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "cancelled")

    expired = TokenCodec(AUTH_SECRET).issue(
        Principal("client", stack.client(0)["id"], stack.seed["business_id"]),
        now=datetime.now(UTC) - timedelta(hours=13),
    )
    stale = await (await new_context()).new_page()
    await stale.goto(f"{stack.booking.url}/portal/#token={expired}")
    alert = stale.locator("#alert")
    await expect(alert).to_contain_text("The session has expired")
    await expect(alert).to_contain_text('"go to portal" link')
    await expect(stale.get_by_label("Portal token")).to_be_visible()
    await stale.screenshot(path=screenshots / "portal-session-expired.png")


async def test_every_page_fits_a_375_px_screen_and_axe_finds_no_serious_violation(
    stack: Stack, new_context: NewContext, axe_source: str, screenshots: Path
) -> None:
    request = await submit(stack, london_today() + timedelta(days=13), "16:00")
    day = date.fromisoformat(request["date"])
    found: dict[str, list[str]] = {}

    async def check(page: Page, name: str, width: int) -> None:
        await page.wait_for_load_state("networkidle")
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            await page.evaluate(axe_source)
        result = await page.evaluate(
            "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
        )
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        if bad:
            found[f"{name}@{width}"] = bad

    for width in (375, 1100):
        context = await new_context(viewport={"width": width, "height": 812})
        signed_out = await context.new_page()
        await signed_out.goto(f"{stack.booking.url}/portal/")
        await expect(signed_out.get_by_label("Portal token")).to_be_visible()
        await check(signed_out, "portal sign-in", width)

        portal = await open_portal(context, stack, stack.client(0)["token"])
        await show_month(portal, day)
        await check(portal, "portal month", width)
        if width == 375:
            await expect(portal.locator("#agenda")).to_contain_text("REQ: Dog Walk 30 min 16:00")
            await portal.screenshot(path=screenshots / "portal-month-375.png", full_page=True)
        await day_button(portal, day).click()
        await check(portal, "portal day", width)
        await job_item(portal, request["id"]).get_by_role("button", name=re.compile(r"^cancel")).click()
        await check(portal, "portal dialog", width)
        if width == 375:
            await portal.screenshot(path=screenshots / "portal-dialog-375.png")

        admin = await context.new_page()
        await admin.goto(f"{stack.booking.url}/admin/")
        await expect(admin.get_by_label("Admin token")).to_be_visible()
        await check(admin, "admin sign-in", width)
        await admin.goto(f"{stack.booking.url}/admin/#token={stack.admin_token}")
        await expect(admin.locator("#live-status")).to_have_text(re.compile(r"^Live"))
        await check(admin, "admin HOME", width)
        if width == 375:
            await admin.screenshot(path=screenshots / "admin-home-375.png")
        await admin.goto(f"{stack.booking.url}/admin/job-requests.html")
        await expect(admin.locator(f'#requests-body tr[data-job-request="{request["id"]}"]')).to_be_visible()
        await check(admin, "job requests", width)
        await admin.get_by_label("cancelled").check()
        await check(admin, "job requests, cancelled", width)
        await admin.goto(f"{stack.booking.url}/admin/client.html?id={stack.client(0)['id']}")
        await expect(admin.locator("#logs-body tr").first).to_be_visible()
        await check(admin, "client page", width)

    assert found == {}, found


async def test_the_admin_pages_back_through_a_long_client_log_with_show_older_entries(
    stack: Stack, new_context: Callable[..., Awaitable[BrowserContext]], mongo: Any
) -> None:
    ben = stack.client(1)
    # 130 entries for Ben, written as audit writes them (a long-standing client: months of daily walks).
    base = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    entries = [
        {
            "_id": f"paging-{i:03d}",
            "dedupe_key": f"browser-paging:{i}",
            "business_id": "demo-business",
            "client_id": ben["id"],
            "type": "job_request.submitted",
            "occurred_at": base + timedelta(hours=i),
            "timezone": "Europe/London",
            "actor": {"kind": "client", "id": ben["id"]},
            "job_request_id": f"paging-jr-{i:03d}",
            "summary": f"Job request submitted by client: walk number {i}",
            "correlation_id": "",
            "logged_at": base,
        }
        for i in range(130)
    ]
    await mongo[stack.audit.env["MONGODB_DATABASE"]]["client_log_entries"].insert_many(entries)

    context = await new_context()
    page = await context.new_page()
    await page.goto(f"{stack.booking.url}/admin/client.html?id={ben['id']}#token={stack.admin_token}")
    await expect(page.locator("#logs-body tr")).to_have_count(100)  # one page (other tests' entries come first)
    rows = page.locator('#logs-body tr[data-job-request^="paging-jr-"]')
    await expect(rows.first).to_have_attribute("data-job-request", "paging-jr-129")  # newest first
    older = page.get_by_role("button", name="Show older entries")
    await older.click()
    await expect(rows).to_have_count(130)
    await expect(rows.last).to_have_attribute("data-job-request", "paging-jr-000")  # down to the oldest
    await expect(page.locator("#logs-body tr").last).to_have_attribute("data-job-request", "paging-jr-000")
    await expect(older).to_be_hidden()
    await expect(page.get_by_role("status")).to_have_text(re.compile(r"^All 1[3-9]\d entries shown\.$"))


async def test_a_token_of_the_wrong_role_signs_out_with_a_clear_message_on_either_side(
    stack: Stack, new_context: Callable[..., Awaitable[BrowserContext]]
) -> None:
    context = await new_context()
    portal = await context.new_page()
    await portal.goto(f"{stack.booking.url}/portal/#token={stack.admin_token}")  # an admin token in the portal
    await expect(portal.get_by_label("Portal token")).to_be_visible()
    await expect(portal.get_by_role("alert")).to_contain_text("This is not a client portal token")
    await expect(portal.locator("#schedule")).to_be_hidden()

    admin = await context.new_page()
    await admin.goto(f"{stack.booking.url}/admin/job-requests.html#token={stack.client(0)['token']}")  # a client's
    await expect(admin.get_by_label("Admin token")).to_be_visible()
    await expect(admin.get_by_role("alert")).to_contain_text("This is not an admin token")
    assert await admin.evaluate("localStorage.getItem('admin_token')") is None  # not kept for the other tabs


async def test_signing_out_of_the_admin_pages_leaves_nothing_of_the_business_in_any_tab(
    stack: Stack, new_context: Callable[..., Awaitable[BrowserContext]]
) -> None:
    context = await new_context()
    home = await context.new_page()
    await home.goto(f"{stack.booking.url}/admin/#token={stack.admin_token}")
    await expect(home.locator("#notices")).to_be_visible()
    requests = await context.new_page()  # a second tab of the same admin (the token is shared between tabs)
    await requests.goto(f"{stack.booking.url}/admin/job-requests.html")
    await expect(requests.locator("#requests-body tr").first).to_be_visible()

    await home.get_by_role("button", name="Sign out").click()
    for page in (home, requests):
        await expect(page.get_by_label("Admin token")).to_be_visible()
        await expect(page.get_by_role("alert")).to_have_text("Signed out.")
        await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        assert await page.evaluate("localStorage.getItem('admin_token')") is None
    assert await requests.locator("#requests-body tr").count() == 0  # the page loaded again, empty


async def test_the_job_request_screen_shows_more_until_the_last_page_and_starts_again_with_another_filter(
    stack: Stack, new_context: NewContext, mongo: Any
) -> None:
    # Ben's long list, written as booking writes it: 130 requested (soonest first; three a day at one time, so the
    # id breaks the ties) and 120 cancelled years ago (newest cancellation first; two at each instant).
    base = stack.booking.url
    template = await submit(stack, london_today() + timedelta(days=20), "10:00", client=1)
    projection = mongo[stack.booking.env["MONGODB_DATABASE"]]["job_requests"]
    requested = await projection.find_one({"_id": template["id"]})
    await stack.http.post(f"{base}/v1/portal/job-requests/{template['id']}/cancel", headers=stack.client_headers(1))
    cancelled = await projection.find_one({"_id": template["id"]})
    assert requested and cancelled and cancelled["status"] == "cancelled"
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await projection.insert_many(
        [
            {**requested, "_id": f"more-{i:03d}", "date": (date(2031, 1, 1) + timedelta(days=i // 3)).isoformat()}
            for i in range(130)
        ]
        + [
            {**cancelled, "_id": f"older-{i:03d}", "cancelled_at": long_ago + timedelta(minutes=i // 2)}
            for i in range(120)
        ]
    )
    mine_requested = [f"more-{i:03d}" for i in range(130)]
    mine_cancelled = [f"older-{i:03d}" for i in reversed(range(120))]

    page = await (await new_context()).new_page()
    await page.goto(f"{base}/admin/job-requests.html#token={stack.admin_token}")
    rows = page.locator("#requests-body tr[data-job-request]")
    more = page.get_by_role("button", name="Show more")
    status = page.locator("#requests-status")

    async def shown(prefix: str) -> list[str]:
        ids = await rows.evaluate_all("(rows) => rows.map((row) => row.dataset.jobRequest)")
        return [i for i in ids if i.startswith(prefix)]

    async def show_all() -> None:
        for _ in range(5):
            if not await more.is_visible():
                return
            count = await rows.count()
            await more.click()
            await expect(rows).not_to_have_count(count)
        raise AssertionError("Show more never went away")

    # One full page, then "Show more" until the last page is in: each request once, in the list's order.
    await expect(rows).to_have_count(100)
    await expect(more).to_be_visible()
    await show_all()
    assert await shown("more-") == mine_requested
    await expect(status).to_have_text(re.compile(r"^All 1[3-9]\d requested job requests shown\.$"))
    await expect(page.locator("#requests-title")).to_be_focused()

    # Another filter starts from its first page: the earlier pages, the count and the button's state go.
    await page.get_by_label("cancelled").check()
    await expect(page.locator("#requests-caption")).to_have_text("Job requests that are cancelled")
    await expect(rows).to_have_count(100)
    await expect(status).to_have_text("")
    await expect(more).to_be_visible()

    # A page asked for before the filter changed again is not shown under the new filter.
    held: list[Route] = []
    await page.route("**/v1/admin/job-requests?*before=*", lambda route: held.append(route))
    await more.click()
    await eventually(lambda: held)
    await page.get_by_label("requested").check()
    await expect(page.locator("#requests-caption")).to_have_text("Job requests that are requested")
    await held[0].continue_()
    await page.unroute("**/v1/admin/job-requests?*before=*")
    await page.wait_for_load_state("networkidle")
    await expect(rows).to_have_count(100)
    assert await shown("older-") == []
    await expect(more).to_be_enabled()

    await page.get_by_label("cancelled").check()
    await expect(page.locator("#requests-caption")).to_have_text("Job requests that are cancelled")
    await expect(rows).to_have_count(100)
    await show_all()
    assert await shown("older-") == mine_cancelled
    assert await shown("more-") == []
    total = await rows.count()
    await expect(status).to_have_text(f"All {total} cancelled job requests shown.")


async def test_a_double_click_on_next_goes_two_months_and_a_late_answer_does_not_bring_one_back(
    stack: Stack, new_context: NewContext
) -> None:
    page = await open_portal(await new_context(), stack, stack.client(0)["token"])
    title = page.locator("#month-title")
    shown = datetime.strptime(str(await title.text_content()), "%B %Y").date()
    one, two = (date(shown.year + (shown.month + n - 1) // 12, (shown.month + n - 1) % 12 + 1, 1) for n in (1, 2))

    # The first month's answer is held back until the second month is shown: it arrives late, and is dropped.
    held: list[Route] = []

    async def hold_the_first(route: Route) -> None:
        if f"month={one:%Y-%m}" in route.request.url and not held:
            held.append(route)
        else:
            await route.continue_()

    await page.route("**/v1/portal/schedule?month=*", hold_the_first)
    await page.locator("#next-month").dblclick()
    await expect(title).to_have_text(f"{two:%B %Y}")
    await expect(day_button(page, two)).to_be_visible()
    async with page.expect_request_finished(lambda request: f"month={one:%Y-%m}" in request.url):
        await held[0].continue_()
    await page.evaluate("new Promise((settled) => setTimeout(settled, 100))")
    assert await title.text_content() == f"{two:%B %Y}"
    assert await day_button(page, one).count() == 0

    await page.unroute("**/v1/portal/schedule?month=*")
    await page.get_by_role("button", name="Previous month").click()
    await expect(title).to_have_text(f"{one:%B %Y}")


async def test_a_reason_the_api_refuses_is_explained_under_the_reason_field_and_can_be_corrected(
    stack: Stack, new_context: NewContext, axe_source: str
) -> None:
    request = await submit(stack, london_today() + timedelta(days=14), "14:00")
    page, dialog = await open_cancel_dialog(stack, await new_context(), request)
    reason = dialog.get_by_label("Reason (optional)")
    await reason.fill("Plans changed \u0007 twice")  # pasted with a control character: the textarea takes it
    assert "\u0007" in await reason.input_value()
    yes = dialog.get_by_role("button", name="Yes, cancel job request")
    await yes.click()

    # The real API's 422 names the field: its message is under the reason, which is marked invalid and described by it.
    refusal = "must not contain control characters (line breaks and tabs are fine)"
    await expect(dialog.locator("#cancel-reason-error")).to_have_text(refusal)
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(reason).to_have_accessible_description(refusal)
    await expect(reason).to_be_focused()
    await expect(dialog.get_by_role("alert")).to_have_text(
        "The job request was not cancelled: correct the reason and try again."
    )
    await expect(yes).to_be_enabled()
    assert (await job_request(stack, request["id"]))["status"] == "requested"
    await page.evaluate(axe_source)
    result = await page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})")
    assert [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")] == []

    await reason.fill("Plans changed twice")
    await yes.click()
    await expect(dialog).to_be_hidden()
    await expect(job_item(page, request["id"])).to_have_attribute("data-status", "cancelled")
    assert (await job_request(stack, request["id"]))["cancel_reason"] == "Plans changed twice"

    # The next opening of the dialog starts clean.
    other = await submit(stack, london_today() + timedelta(days=14), "15:00")
    await day_button(page, date.fromisoformat(other["date"])).click()
    await job_item(page, other["id"]).get_by_role("button", name=re.compile(r"^cancel")).click()
    await expect(dialog).to_be_visible()
    await expect(reason).not_to_have_attribute("aria-invalid", "true")
    await expect(dialog.locator("#cancel-reason-error")).to_be_hidden()
