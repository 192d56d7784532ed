// The client portal: the month schedule, a day's services, and cancelling a job request before it is scheduled.
import { clearFieldErrors, markFieldErrors, otherFieldErrors } from "/shared/field-errors.js";
import { ApiError, NetworkError, call, el, takeToken } from "/shared/http.js";
import { addMonths, instant, longDay, monthTitle, today } from "/shared/when.js";

const TOKEN_KEY = "portal_token";
const SCHEDULED_HELP =
  'Scheduled jobs are cancelled another way: contact your pet sitter (see "How Does a Client Cancel a Scheduled Job?").';
const $ = (id) => document.getElementById(id);

const state = {
  token: takeToken(TOKEN_KEY),
  month: null, // the month shown
  wanted: null, // the month last asked for (shown once its answer is in): Previous/Next count from it
  timezone: "UTC",
  day: null,
  jobs: [],
  cancelling: null, // the job request the dialog is about
  opener: null, // the button that opened the dialog, focused again when it closes
};

function api(path, options = {}) {
  return call("", path, { ...options, token: state.token });
}

function showAlert(message) {
  $("alert").textContent = message;
}

function announce(message) {
  $("status").textContent = message;
}

function problem(error) {
  if (error instanceof NetworkError) {
    return "Could not reach the booking service. Check your connection and try again.";
  }
  if (error instanceof ApiError && error.status === 401) {
    return `${error.message} Your session has ended: open the portal again with the "go to portal" link from your pet sitter, or paste a new portal token below.`;
  }
  if (error instanceof ApiError && error.status === 403) {
    return `${error.message} This is not a client portal token: open the portal with the "go to portal" link from your pet sitter, or paste a portal token below.`;
  }
  if (error instanceof ApiError && error.code === "job_request_already_scheduled") {
    return `This job request was scheduled meanwhile, so it can no longer be cancelled here. ${SCHEDULED_HELP}`;
  }
  if (error instanceof ApiError && error.errors.length) return `The request is not valid: ${otherFieldErrors(error)}`;
  return error.message || "Something went wrong; try again.";
}

function signedOut(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if ($("cancel-dialog").open) $("cancel-dialog").close();
  // Nothing of this client's stays on the page for whoever signs in next.
  state.day = null;
  state.jobs = [];
  $("status").textContent = "";
  $("day-jobs").replaceChildren();
  $("day-panel").hidden = true;
  $("schedule").hidden = true;
  $("sign-in").hidden = false;
  showAlert(message);
  $("token").focus();
}

async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) signedOut(problem(error));
    else showAlert(problem(error));
    return undefined;
  }
}

// ---- Month view ----

function weeksOf(month) {
  const [year, mon] = month.split("-").map(Number);
  const first = new Date(Date.UTC(year, mon - 1, 1));
  const start = new Date(first);
  start.setUTCDate(1 - ((first.getUTCDay() + 6) % 7)); // back to Monday
  const weeks = [];
  for (let cursor = new Date(start); weeks.length < 6; ) {
    const week = [];
    for (let i = 0; i < 7; i++) {
      week.push(cursor.toISOString().slice(0, 10));
      cursor.setUTCDate(cursor.getUTCDate() + 1);
    }
    weeks.push(week);
    if (cursor.getUTCMonth() !== mon - 1) break;
  }
  return weeks;
}

function entryText(entry) {
  return `${entry.label} ${entry.start_time}`;
}

function dayButton(day, entries) {
  // The visible day number is part of the accessible name: "Thursday 3 December 2026 REQ: Dog Walk 30 min 09:00".
  const at = new Date(`${day}T00:00:00Z`);
  const weekday = new Intl.DateTimeFormat("en-GB", { weekday: "long", timeZone: "UTC" }).format(at);
  const month = new Intl.DateTimeFormat("en-GB", { month: "long", year: "numeric", timeZone: "UTC" }).format(at);
  return el(
    "button",
    { type: "button", class: "day-button", "data-day": day, onclick: () => openDay(day) },
    el("span", { class: "day-number" },
      el("span", { class: "visually-hidden" }, `${weekday} `), String(Number(day.slice(8))),
      el("span", { class: "visually-hidden" }, ` ${month}`)),
    entries.map((e) => el("span", { class: `entry ${e.status}` }, entryText(e))),
    entries.length ? el("span", { class: "entry-count", "aria-hidden": "true" }, `\u2022${entries.length}`) : null,
  );
}

let monthAsked = 0; // answers that arrive after a later request (fast Previous/Next) are dropped

async function loadMonth(month) {
  const asked = ++monthAsked;
  state.month ??= month; // Previous/Next work from here even if this first load fails
  state.wanted = month;
  const schedule = await guarded(() => api(`/v1/portal/schedule?month=${month}`));
  if (asked !== monthAsked) return;
  if (!schedule) {
    state.wanted = state.month; // the next Previous/Next counts from the month on screen again
    return;
  }
  state.month = month;
  state.timezone = schedule.timezone;
  const byDay = new Map(schedule.days.map((d) => [d.date, d.entries]));
  const todayIs = today(state.timezone);
  $("month-title").textContent = monthTitle(month);
  const body = $("calendar-body");
  body.replaceChildren(
    ...weeksOf(month).map((week) =>
      el(
        "tr",
        {},
        week.map((day) => {
          const inMonth = day.startsWith(month);
          const cell = el("td", {
            class: [inMonth ? "" : "outside", day === state.day ? "selected" : ""].join(" ").trim() || null,
            "aria-current": day === todayIs ? "date" : null,
          });
          if (inMonth) cell.append(dayButton(day, byDay.get(day) ?? []));
          return cell;
        }),
      ),
    ),
  );
  $("agenda").replaceChildren(
    ...schedule.days.map((d) =>
      el("li", { "aria-current": d.date === todayIs ? "date" : null }, dayButton(d.date, d.entries)),
    ),
  );
  if (!schedule.days.length) $("agenda").append(el("li", { class: "muted" }, "Nothing booked or requested this month."));
}

// ---- Day panel ----

function jobItem(job) {
  const pets = job.pets.map((p) => p.name).join(", ");
  const what = el("div", {},
    el("div", { class: "what" }, `${job.service.name}`),
    el("div", {}, `${job.start_time} \u00b7 Pets: ${pets}`),
    el("div", {}, el("span", { class: `badge ${job.status}` }, job.status)),
  );
  const item = el("li", { "data-job-request": job.id, "data-status": job.status }, what);
  if (job.status === "requested" && job.cancellable) {
    item.append(
      el("button", {
        type: "button",
        class: "cancel-button",
        "aria-label": `cancel job request: ${job.service.name} at ${job.start_time}`,
        onclick: (event) => openDialog(job, event.currentTarget),
      }, "cancel"),
    );
  } else if (job.status === "scheduled") {
    item.append(el("p", { class: "note" }, SCHEDULED_HELP));
  } else if (job.status === "cancelled" && job.cancelled_at) {
    item.append(
      el("p", { class: "note", tabindex: "-1", id: `cancelled-${job.id}` },
        `Cancelled ${instant(job.cancelled_at, job.timezone)}${job.cancel_reason ? ` \u00b7 Reason: ${job.cancel_reason}` : ""}`),
    );
  }
  return item;
}

function renderDay() {
  $("day-title").textContent = `Services booked or requested on ${longDay(state.day)}`;
  const list = $("day-jobs");
  list.replaceChildren(...state.jobs.map(jobItem));
  if (!state.jobs.length) list.append(el("li", { class: "muted" }, "Nothing booked or requested on this day."));
  $("day-panel").hidden = false;
}

let dayAsked = 0; // a day's answer that arrives after a later click on another day is dropped

async function openDay(day) {
  const asked = ++dayAsked;
  const schedule = await guarded(() => api(`/v1/portal/schedule/${day}`));
  if (!schedule || asked !== dayAsked) return;
  state.day = day;
  state.timezone = schedule.timezone;
  state.jobs = schedule.job_requests;
  showAlert("");
  for (const cell of document.querySelectorAll("td.selected")) cell.classList.remove("selected");
  document.querySelector(`#calendar-body [data-day="${day}"]`)?.parentElement.classList.add("selected");
  renderDay();
  $("day-panel").focus();
}

// ---- The cancel dialog ----

const cancelFields = () => ({ reason: $("cancel-reason") }); // the API's field names in the dialog's form
const inFlight = new Set(); // the job requests whose cancel is on its way (the dialog may be closed meanwhile)

// While its cancel is on its way the button is aria-disabled, not disabled: it keeps the keyboard focus.
function confirmButton({ busy }) {
  const button = $("confirm-cancel");
  button.disabled = false;
  button.setAttribute("aria-disabled", String(busy));
  button.textContent = busy ? "Cancelling\u2026" : "Yes, cancel job request";
  return button;
}

function openDialog(job, opener) {
  state.cancelling = job;
  state.opener = opener;
  const pets = job.pets.map((p) => p.name).join(", ");
  $("cancel-what").textContent = `${job.service.name} for ${pets} on ${longDay(job.date)} at ${job.start_time}.`;
  $("cancel-reason").value = "";
  $("cancel-error").textContent = "";
  clearFieldErrors(cancelFields());
  confirmButton({ busy: inFlight.has(job.id) });
  $("cancel-dialog").showModal();
  $("cancel-reason").focus();
}

function closeDialog() {
  if ($("cancel-dialog").open) $("cancel-dialog").close();
}

// The dialog fires "close" as a task of its own, after it has closed: a quick Escape then Enter can
// open it again first. That late event belongs to the earlier opening and must leave the new one alone.
function afterClose() {
  if ($("cancel-dialog").open) return;
  const job = state.cancelling;
  state.cancelling = null;
  const cancelled = job && document.getElementById(`cancelled-${job.id}`);
  const target = cancelled ?? (state.opener?.isConnected ? state.opener : $("day-panel"));
  target.focus();
}

async function confirmCancel() {
  const job = state.cancelling;
  if (!job || inFlight.has(job.id) || $("confirm-cancel").disabled) return;
  inFlight.add(job.id);
  confirmButton({ busy: true });
  $("cancel-error").textContent = "";
  clearFieldErrors(cancelFields());
  const reason = $("cancel-reason").value.trim();
  let cancelled;
  try {
    cancelled = await api(`/v1/portal/job-requests/${encodeURIComponent(job.id)}/cancel`, {
      method: "POST",
      body: reason ? { reason } : {},
    });
  } catch (error) {
    inFlight.delete(job.id);
    await cancelRefused(job, error);
    return;
  }
  inFlight.delete(job.id);
  state.jobs = state.jobs.map((j) => (j.id === cancelled.id ? cancelled : j));
  renderDay();
  if (state.cancelling?.id === job.id) closeDialog(); // the dialog may have been closed, or opened for another request
  announce(`Job request cancelled: ${cancelled.service.name} on ${longDay(cancelled.date)} at ${cancelled.start_time}.`);
  await loadMonth(state.wanted ?? state.month); // a Previous/Next click made meanwhile stands
}

// A cancel that did not go through: said in the dialog when it is still open for that request, else in the page.
async function cancelRefused(job, error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signedOut(problem(error));
    return;
  }
  const refused = error instanceof ApiError && error.status === 409;
  let marked = false;
  if (state.cancelling?.id === job.id) {
    // A refused reason (422) is told under the reason field; what is about no field of the dialog, in its alert.
    marked = markFieldErrors(error, cancelFields());
    const others = otherFieldErrors(error, cancelFields());
    $("cancel-error").textContent = marked
      ? `The job request was not cancelled: correct the reason and try again.${others ? ` Also: ${others}` : ""}`
      : problem(error);
    const button = confirmButton({ busy: false });
    // Scheduled meanwhile: no use trying again. Busy (someone else changing it right now): try again.
    button.disabled = error instanceof ApiError && error.code === "job_request_already_scheduled";
  } else {
    showAlert(`The job request was not cancelled: ${problem(error)}`); // the dialog was closed meanwhile
  }
  if (refused) {
    const fresh = await guarded(() => api(`/v1/portal/schedule/${state.day}`));
    if (fresh) {
      state.jobs = fresh.job_requests;
      renderDay();
    }
    await loadMonth(state.wanted ?? state.month);
  }
  if (state.cancelling?.id === job.id) $(marked ? "cancel-reason" : "close-cancel").focus();
}

// Keep Tab and Shift+Tab inside the open dialog.
function trapFocus(event) {
  if (event.key !== "Tab") return;
  const focusable = [...$("cancel-dialog").querySelectorAll("textarea, button:not([disabled])")];
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

// ---- Start ----

function start() {
  // Each click moves one month from the month last asked for, even while that one is still loading.
  $("previous-month").addEventListener("click", () => loadMonth(addMonths(state.wanted, -1)));
  $("next-month").addEventListener("click", () => loadMonth(addMonths(state.wanted, 1)));
  $("confirm-cancel").addEventListener("click", confirmCancel);
  $("close-cancel").addEventListener("click", closeDialog);
  $("cancel-dialog").addEventListener("keydown", trapFocus);
  $("cancel-dialog").addEventListener("close", afterClose); // Escape closes it too: the same as "close"
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $("token").value = "";
    showAlert("");
    openSchedule();
  });
  if (state.token) openSchedule();
  else $("sign-in").hidden = false;
}

async function openSchedule() {
  $("sign-in").hidden = true;
  $("schedule").hidden = false;
  const opening = loadMonth(today(Intl.DateTimeFormat().resolvedOptions().timeZone).slice(0, 7));
  const asked = monthAsked;
  await opening;
  // The browser's today may be in another month than the business's (New Year's Eve in New York, for a business in
  // London): the schedule answers with the business timezone; open the month that is current there (unless the
  // client has gone to another month meanwhile).
  const businessMonth = today(state.timezone).slice(0, 7);
  if (state.month && businessMonth !== state.month && asked === monthAsked) await loadMonth(businessMonth);
}

start();
