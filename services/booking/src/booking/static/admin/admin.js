// What the admin pages share: the admin token, where notifier and audit are, one error wording.
import { otherFieldErrors } from "/shared/field-errors.js";
import { ApiError, NetworkError, call, takeToken } from "/shared/http.js";

const TOKEN_KEY = "admin_token";
export const $ = (id) => document.getElementById(id);

// The admin token is shared by the admin's tabs (localStorage); a client's portal token stays in its tab.
export const session = { token: takeToken(TOKEN_KEY, localStorage), config: null };

export async function services() {
  session.config ??= await call("", "/admin/config.json");
  return session.config;
}

export const booking = (path, options = {}) => call("", path, { ...options, token: session.token });
export const notifier = async (path, options = {}) =>
  call((await services()).notifier_url, path, { ...options, token: session.token });
export const audit = async (path, options = {}) =>
  call((await services()).audit_url, path, { ...options, token: session.token });

export function problem(error, service = "the service") {
  if (error instanceof NetworkError) return `Could not reach ${service}. Check your connection and try again.`;
  if (error instanceof ApiError && error.status === 401) {
    return `${error.message} Sign in again with a fresh admin token below.`;
  }
  if (error instanceof ApiError && error.status === 403) {
    return `${error.message} This is not an admin token: sign in below with the admin token of your business.`;
  }
  // The admin pages have no input a 422's field messages could go under: all of them go to the alert.
  if (error instanceof ApiError && error.errors.length) return `The request is not valid: ${otherFieldErrors(error)}`;
  return error.message || "Something went wrong; try again.";
}

export function showAlert(message) {
  $("alert").textContent = message;
}

const SIGNED_OUT_KEY = "admin_signed_out"; // says "Signed out." on the page that loads after signing out

// Sign out of every admin tab of this browser (a shared front-desk computer): the token goes, and the page loads
// again empty, nothing of the business left in it. The other tabs hear it through the storage event.
function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  sessionStorage.setItem(SIGNED_OUT_KEY, "1");
  location.replace(location.pathname + location.search); // the same page (a client's LOGS keeps its ?id=)
}

window.addEventListener("storage", (event) => {
  if (event.key === TOKEN_KEY && !event.newValue && session.token) {
    sessionStorage.setItem(SIGNED_OUT_KEY, "1");
    location.replace(location.pathname + location.search);
  }
});

// Run the page once there is a token; otherwise (or after a 401) ask for one.
export function signInThen(run) {
  $("sign-out").addEventListener("click", signOut);
  if (sessionStorage.getItem(SIGNED_OUT_KEY)) {
    sessionStorage.removeItem(SIGNED_OUT_KEY);
    showAlert("Signed out.");
  }
  const form = $("sign-in-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    session.token = $("token").value.trim();
    localStorage.setItem(TOKEN_KEY, session.token);
    $("token").value = "";
    $("sign-in").hidden = true;
    $("page").hidden = false;
    $("sign-out").hidden = false;
    showAlert("");
    run();
  });
  if (session.token) {
    $("page").hidden = false;
    $("sign-out").hidden = false;
    run();
  } else {
    $("sign-in").hidden = false;
  }
}

export function signedOut(message) {
  session.token = null;
  localStorage.removeItem(TOKEN_KEY);
  $("page").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  showAlert(message);
}

export async function guarded(action, service) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) signedOut(problem(error, service));
    else showAlert(problem(error, service));
    return undefined;
  }
}
