// Calls to the services: JSON in and out, errors as ApiError (the services' {code, message}) or NetworkError.

export class ApiError extends Error {
  constructor(status, code, message, errors = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors; // a 422's field messages: [{field, message}] (field "" when about the whole request)
  }
}

export class NetworkError extends Error {}

export async function call(base, path, { token, method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new NetworkError("Could not reach the service. Check your connection and try again.");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(
      response.status,
      data?.code ?? "http_error",
      data?.message ?? `The service answered ${response.status}. Try again in a moment.`,
      Array.isArray(data?.errors) ? data.errors : [],
    );
  }
  return data;
}

// A token handed over in the URL fragment (#token=...) is kept in `storage` and taken out of the address bar
// (a fragment never reaches a server or a Referer header).
export function takeToken(storageKey, storage = sessionStorage) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("token");
  if (fromLink) {
    storage.setItem(storageKey, fromLink);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return storage.getItem(storageKey);
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// A new "#token=..." link followed while the page is open (a same-document navigation) opens the page anew.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
});
