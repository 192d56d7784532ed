// A client's page: the blue snapshot panel with "go to portal", and the client's LOGS from audit.
import { el } from "/shared/http.js";
import { instant } from "/shared/when.js";
import { $, audit, booking, guarded, showAlert, signInThen } from "/admin/admin.js";

const clientId = new URLSearchParams(location.search).get("id") ?? "";

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
  const portal = await guarded(() => booking(`/v1/admin/clients/${id}/portal-session`, { method: "POST" }), "the booking service");
  if (portal) {
    $("go-to-portal").href = portal.portal_url;
    $("go-to-portal").setAttribute("aria-label", `go to portal as ${client.name} (opens in a new tab)`);
  }
  const logs = await guarded(() => audit(`/v1/admin/clients/${id}/logs`), "the audit service");
  if (!logs) return;
  $("logs-body").replaceChildren(
    ...logs.map((entry) =>
      el("tr", { "data-job-request": entry.job_request_id, "data-type": entry.type },
        el("td", { "data-label": "Date and time" }, el("time", { datetime: entry.occurred_at }, instant(entry.occurred_at, entry.timezone))),
        el("td", { "data-label": "Entry" }, entry.summary),
        el("td", { "data-label": "Job request" }, entry.job_request_id),
      ),
    ),
  );
  if (!logs.length) $("logs-body").append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No entries yet.")));
}

signInThen(run);
