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

const PAGE = 100; // requests per page; "Show more" asks for the next page, past the last request shown

// Only the last filter's answers are shown: `asked` counts the loads, `onScreen` is the one whose answer is shown,
// `last` the last request shown (the next page starts past it).
const list = { asked: 0, onScreen: 0, status: "", last: null };

// Open requests come soonest first (the next page is `after` the last), cancelled ones newest cancellation first
// (the next page is `before` the last), as the API pages them.
function pageQuery(status, last) {
  const query = new URLSearchParams({ status, limit: String(PAGE) });
  if (last && status === "cancelled") {
    query.set("before", last.cancelled_at);
    query.set("before_id", last.id);
  } else if (last) {
    query.set("after", `${last.date}T${last.start_time}`);
    query.set("after_id", last.id);
  }
  return query;
}

function rowsShown() {
  return $("requests-body").querySelectorAll("tr[data-job-request]").length;
}

async function load({ keepAlert = false } = {}) {
  const status = chosenStatus();
  const mine = ++list.asked;
  const moreWasHidden = $("requests-more").hidden;
  $("requests-more").hidden = true; // the list on screen is about to be replaced: no more pages of it
  const requests = await guarded(() => booking(`/v1/admin/job-requests?${pageQuery(status)}`), "the booking service");
  if (mine !== list.asked) return;
  if (!requests) {
    // Not replaced after all: the list on screen stays as it was, its "Show more" too (the alert says why).
    $("requests-more").hidden = moreWasHidden;
    return;
  }
  if (!keepAlert) showAlert(""); // an earlier failure's alert does not outlive a good answer
  Object.assign(list, { onScreen: mine, status, last: requests.at(-1) ?? null });
  $("requests-caption").textContent = `Job requests that are ${status}`;
  $("requests-body").replaceChildren(...requests.map(row));
  if (!requests.length) $("requests-body").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, `No ${status} job requests.`)));
  $("requests-status").textContent = "";
  $("requests-more").hidden = requests.length < PAGE;
  $("requests-more").disabled = false;
}

async function showMore() {
  const more = $("requests-more");
  const mine = list.asked;
  if (more.disabled || list.onScreen !== mine) return; // a page is on its way, or the list shown is being replaced
  more.disabled = true;
  const page = await guarded(
    () => booking(`/v1/admin/job-requests?${pageQuery(list.status, list.last)}`),
    "the booking service",
  );
  if (mine !== list.asked) return; // the filter changed meanwhile: this page is of a list no longer shown
  more.disabled = false;
  if (!page) return;
  showAlert("");
  $("requests-body").append(...page.map(row));
  if (page.length) list.last = page.at(-1);
  more.hidden = page.length < PAGE;
  const shown = `${rowsShown()} ${list.status} job requests shown.`;
  $("requests-status").textContent = more.hidden ? `All ${shown}` : shown;
  if (more.hidden) $("requests-title").focus(); // the button went with the last page: keep the focus on this screen
}

async function schedule(request, button) {
  if (button.getAttribute("aria-disabled") === "true") return; // a second click while the first is on its way
  button.setAttribute("aria-disabled", "true");
  const done = await guarded(
    () => booking(`/v1/admin/job-requests/${encodeURIComponent(request.id)}/schedule`, { method: "POST" }),
    "the booking service",
  );
  if (!done) {
    button.setAttribute("aria-disabled", "false"); // usable again if the list cannot be reloaded either
    await load({ keepAlert: true }); // the alert says why (scheduled or cancelled meanwhile)
    return;
  }
  $("done").textContent = `Scheduled: ${request.service.name} for ${request.client.name} on ${shortDay(request.date)}.`;
  // The row leaves the list; the pages shown so far stay (loading the list again would go back to its first page).
  showAlert("");
  button.closest("tr")?.remove();
  if (!rowsShown()) await load();
  $("requests-title").focus(); // the row (and its button) left the list: keep the keyboard focus on this screen
}

function run() {
  for (const radio of document.querySelectorAll('input[name="status"]')) radio.addEventListener("change", () => load());
  $("requests-more").addEventListener("click", showMore);
  load();
}

signInThen(run);
