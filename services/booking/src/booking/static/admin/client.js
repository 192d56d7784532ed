// A client's page: the blue snapshot panel with "go to portal", and the client's LOGS from audit.
import { el } from "/shared/http.js";
import { instant } from "/shared/when.js";
import { $, audit, booking, guarded, showAlert, signInThen } from "/admin/admin.js";

const clientId = new URLSearchParams(location.search).get("id") ?? "";
const PAGE = 100; // entries per page; "Show older entries" asks for the next page, older than the last shown

async function run() {
  if (!clientId) {
    showAlert("No client chosen: open a client from HOME or the job requests screen.");
    return;
  }
  const id = encodeURIComponent(clientId);
  const client = await guarded(() => booking(`/v1/admin/clients/${id}`), "the booking service");
  if (!client) return;
  $("client-name").textContent = client.name;
  document.title = `${client.name} · Admin`;
  await portalLink(id, client.name);
  // A portal session lasts hours, a page can stay open for days: the link is minted again every hour.
  clearInterval(state.portalRefresh);
  state.portalRefresh = setInterval(() => portalLink(id, client.name), 60 * 60 * 1000);
  const logs = await guarded(() => audit(`/v1/admin/clients/${id}/logs?limit=${PAGE}`), "the audit service");
  if (!logs) return;
  $("logs-body").replaceChildren(...logs.map(row));
  if (!logs.length) $("logs-body").append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No entries yet.")));
  paging = { id, last: logs.at(-1), shown: logs.length, busy: false };
  $("logs-status").textContent = "";
  $("logs-older").hidden = logs.length < PAGE;
}

const state = { portalRefresh: null };

async function portalLink(id, name) {
  const portal = await guarded(() => booking(`/v1/admin/clients/${id}/portal-session`, { method: "POST" }), "the booking service");
  if (!portal) return;
  $("go-to-portal").href = portal.portal_url;
  $("go-to-portal").setAttribute("aria-label", `go to portal as ${name} (opens in a new tab)`);
}

// One listener for the page's life: run() again (after signing in again) only resets the paging state.
let paging = null;
$("logs-older").addEventListener("click", async () => {
  const older = $("logs-older");
  if (!paging || paging.busy) return; // a second click while a page is on its way does nothing
  paging.busy = true;
  older.setAttribute("aria-disabled", "true"); // not `disabled`: that would drop the keyboard focus
  const state = paging;
  const query = new URLSearchParams({ limit: String(PAGE), before: state.last.occurred_at, before_id: state.last.id });
  const page = await guarded(() => audit(`/v1/admin/clients/${state.id}/logs?${query}`), "the audit service");
  state.busy = false;
  older.removeAttribute("aria-disabled");
  if (!page || state !== paging) return;
  $("logs-body").append(...page.map(row));
  state.shown += page.length;
  if (page.length) state.last = page.at(-1);
  older.hidden = page.length < PAGE;
  $("logs-status").textContent = page.length < PAGE ? `All ${state.shown} entries shown.` : `${state.shown} entries shown.`;
  if (older.hidden) $("logs-title").focus();
});

function row(entry) {
  return el("tr", { "data-job-request": entry.job_request_id, "data-type": entry.type },
    el("td", { "data-label": "Date and time" }, el("time", { datetime: entry.occurred_at }, instant(entry.occurred_at, entry.timezone))),
    el("td", { "data-label": "Entry" }, entry.summary),
    el("td", { "data-label": "Job request" }, entry.job_request_id),
  );
}

signInThen(run);
