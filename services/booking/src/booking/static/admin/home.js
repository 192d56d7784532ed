// HOME: the business's notices, newest first, kept live by notifier's Server-Sent Events.
import { ApiError, el } from "/shared/http.js";
import { instant, shortDay } from "/shared/when.js";
import { $, guarded, notifier, problem, services, session, showAlert, signInThen, signedOut } from "/admin/admin.js";

const notices = new Map(); // id -> notice: a notice sent twice (replay after a reconnect) shows once
let unread = 0;
let lastEventId = null;

function byNewest(a, b) {
  // As instants, not as text: "…:05Z" and "…:05.500000Z" of one second would sort the wrong way round.
  return Date.parse(b.created_at) - Date.parse(a.created_at) || b.id.localeCompare(a.id);
}

function noticeItem(notice) {
  const isUnread = notice.read_at === null;
  const item = el("li", { tabindex: "-1", class: isUnread ? "unread" : null, "data-notice": notice.id, "data-job-request": notice.job_request_id },
    el("h3", {}, isUnread ? el("span", { class: "badge unread" }, "unread") : null, isUnread ? " " : null, notice.title),
    el("p", {}, `${notice.service} on ${shortDay(notice.requested_date)} at ${notice.requested_start_time}. `,
      `Cancelled ${instant(notice.cancelled_at, notice.timezone)} by ${notice.cancelled_by.kind === "client" ? notice.client.name : "an admin"}.`),
    notice.reason ? el("p", {}, `Reason: ${notice.reason}`) : null,
    el("p", { class: "muted" }, `Job request ${notice.job_request_id} \u00b7 `,
      el("a", { href: `/admin/client.html?id=${encodeURIComponent(notice.client.id)}` }, `${notice.client.name}: client page and LOGS`)),
  );
  if (isUnread) {
    item.append(el("button", { type: "button", "aria-label": `mark as read: ${notice.title}`, onclick: () => markRead(notice.id) }, "mark as read"));
  }
  return item;
}

function render() {
  // Rebuilt whole: put the keyboard focus back where it was (the same notice, or its "mark as read" button).
  const focused = document.activeElement?.closest?.("#notices [data-notice]");
  const onButton = focused && document.activeElement.tagName === "BUTTON";
  $("unread-count").textContent = `${unread} unread`;
  const list = [...notices.values()].sort(byNewest);
  $("notices").replaceChildren(...list.map(noticeItem));
  if (!list.length) $("notices").append(el("li", { class: "muted" }, "No notices yet."));
  if (focused) {
    const again = document.querySelector(`#notices [data-notice="${CSS.escape(focused.dataset.notice)}"]`);
    (onButton ? again?.querySelector("button") ?? again : again)?.focus();
  }
}

function add(notice, { live }) {
  if (notices.has(notice.id)) return false;
  notices.set(notice.id, notice);
  if (notice.read_at === null) unread += 1;
  // Each announcement differs from the last (two notices alike in title would be one to a screen reader).
  if (live) $("new-notice").textContent = `New notice: ${notice.title}, ${notice.service} on ${shortDay(notice.requested_date)} at ${notice.requested_start_time}.`;
  return true;
}

async function resync() {
  // After a broken stream (an outage longer than the stream's replay window), fetch the list again.
  const list = await guarded(() => notifier("/v1/admin/notices?limit=100"), "the notifier");
  if (!list) return;
  let added = false;
  for (const notice of list.notices) added = add(notice, { live: true }) || added;
  if (added) {
    unread = list.unread_count;
    render();
  }
}

async function markRead(id) {
  const read = await guarded(() => notifier(`/v1/admin/notices/${encodeURIComponent(id)}/read`, { method: "POST" }), "the notifier");
  if (!read) return;
  if (notices.get(id)?.read_at === null) unread = Math.max(0, unread - 1);
  notices.set(id, read);
  render();
  document.querySelector(`#notices [data-notice="${CSS.escape(id)}"]`)?.focus();
}

function setLive(text) {
  $("live-status").textContent = text;
}

// Server-Sent Events over fetch: the admin token goes in the Authorization header (EventSource cannot send
// one, and a token in the URL ends up in logs); reconnects with Last-Event-ID so nothing is missed.
let following = 0; // one stream loop at a time: signing in again starts a new one and ends the old

async function follow() {
  const me = ++following;
  const { notifier_url: base } = await services();
  let delay = 0;
  let retryMs = 1000;
  let broken = false;
  for (;;) {
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    if (me !== following || !session.token) return;
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`${base}/v1/admin/notices/stream`, { headers, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        const body = await response.json().catch(() => ({}));
        setLive("Not live: signed out.");
        signedOut(problem(new ApiError(response.status, body.code, body.message ?? "Sign in again."), "the notifier"));
        return;
      }
      if (response.status === 429) {
        const body = await response.json().catch(() => ({}));
        setLive(`Not live: ${body.message ?? "too many live feeds are open."} Trying again shortly.`);
        delay = Math.max(Number(response.headers.get("Retry-After")) * 1000 || 0, 15000);
        broken = true;
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      setLive("Live: new notices appear here as they happen.");
      delay = 0;
      if (broken) {
        broken = false;
        await resync();
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = (buffer + value).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { type: "message", data: [], id: null };
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon === 0) continue; // a comment (keep-alive)
            const field = colon < 0 ? line : line.slice(0, colon);
            const data = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event.type = data;
            else if (field === "data") event.data.push(data);
            else if (field === "id") event.id = data;
            else if (field === "retry" && /^\d+$/.test(data)) retryMs = Number(data);
          }
          if (event.id) lastEventId = event.id;
          if (event.type === "notice" && event.data.length && add(JSON.parse(event.data.join("\n")), { live: true })) {
            render();
          }
          if (me !== following) return;
        }
      }
      delay = retryMs; // the server ends each stream after a while: pick it up again
    } catch {
      setLive("Reconnecting\u2026");
      delay = Math.min(Math.max(delay * 2, retryMs), 15000);
      broken = true;
    }
  }
}

async function run() {
  const list = await guarded(() => notifier("/v1/admin/notices?limit=100"), "the notifier");
  if (!list) return;
  notices.clear();
  unread = 0;
  for (const notice of list.notices) add(notice, { live: false });
  unread = list.unread_count;
  lastEventId = list.notices[0]?.id ?? null; // newest first: the stream replays from there
  render();
  showAlert("");
  follow();
}

signInThen(run);
