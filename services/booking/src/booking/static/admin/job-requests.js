// The job request processing screen: requests by status; scheduling; who cancelled, when and why.
import { el } from "/shared/http.js";
import { instant, shortDay } from "/shared/when.js";
import { $, booking, guarded, showAlert, signInThen } from "/admin/admin.js";

function chosenStatus() {
  return document.querySelector('input[name="status"]:checked').value;
}

function cancelledBy(request) {
  const by = request.cancelled_by;
  if (!by) return "";
  return by.kind === "client" ? `the client (${request.client.name})` : `an admin (${by.id})`;
}

function statusCell(request) {
  const cell = el("td", { "data-label": "Status" }, el("span", { class: `badge ${request.status}` }, request.status));
  if (request.status === "cancelled") {
    cell.append(
      el("div", {}, `Cancelled by ${cancelledBy(request)}`),
      el("div", {}, `at ${instant(request.cancelled_at, request.timezone)}`),
      el("div", {}, request.cancel_reason ? `Reason: ${request.cancel_reason}` : "No reason given"),
    );
  } else if (request.status === "scheduled" && request.scheduled_at) {
    cell.append(el("div", {}, `Scheduled ${instant(request.scheduled_at, request.timezone)}`));
  }
  return cell;
}

function row(request) {
  const action = el("td", { "data-label": "Action" });
  if (request.status === "requested") {
    action.append(
      el("button", {
        type: "button",
        "aria-label": `schedule: ${request.service.name} for ${request.client.name} on ${shortDay(request.date)} at ${request.start_time}`,
        onclick: (event) => schedule(request, event.currentTarget),
      }, "schedule"),
    );
  }
  return el("tr", { "data-job-request": request.id },
    el("td", { "data-label": "Client" }, el("a", { href: `/admin/client.html?id=${encodeURIComponent(request.client.id)}` }, request.client.name)),
    el("td", { "data-label": "Service" }, request.service.name),
    el("td", { "data-label": "When" }, `${shortDay(request.date)}, ${request.start_time}`),
    el("td", { "data-label": "Pets" }, request.pets.map((p) => p.name).join(", ")),
    statusCell(request),
    action,
  );
}

let asked = 0; // a quick change of filter: only the last answer is shown

async function load({ keepAlert = false } = {}) {
  const status = chosenStatus();
  const mine = ++asked;
  const requests = await guarded(() => booking(`/v1/admin/job-requests?status=${status}`), "the booking service");
  if (!requests || mine !== asked) return;
  if (!keepAlert) showAlert(""); // an earlier failure's alert does not outlive a good answer
  $("requests-caption").textContent = `Job requests that are ${status}`;
  $("requests-body").replaceChildren(...requests.map(row));
  if (!requests.length) $("requests-body").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, `No ${status} job requests.`)));
}

async function schedule(request, button) {
  if (button.getAttribute("aria-disabled") === "true") return; // a second click while the first is on its way
  button.setAttribute("aria-disabled", "true");
  const done = await guarded(
    () => booking(`/v1/admin/job-requests/${encodeURIComponent(request.id)}/schedule`, { method: "POST" }),
    "the booking service",
  );
  if (!done) {
    await load({ keepAlert: true }); // the alert says why (scheduled or cancelled meanwhile)
    return;
  }
  $("done").textContent = `Scheduled: ${request.service.name} for ${request.client.name} on ${shortDay(request.date)}.`;
  await load();
  $("requests-title").focus(); // the row (and its button) left the list: keep the keyboard focus on this screen
}

function run() {
  for (const radio of document.querySelectorAll('input[name="status"]')) radio.addEventListener("change", load);
  load();
}

signInThen(run);
