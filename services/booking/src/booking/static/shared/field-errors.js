// A 422's field messages (ApiError.errors) where people can act on them: under the page's input for that field,
// the others in the page's alert.

// Show each message about one of `inputs` (API field name -> input) under it: the input is marked invalid and
// described by its note (the element with id `${input.id}-error`). True when at least one was shown.
export function markFieldErrors(error, inputs) {
  let marked = false;
  for (const [field, input] of Object.entries(inputs)) {
    const messages = (error.errors ?? []).filter((e) => e.field === field).map((e) => e.message);
    if (!messages.length) continue;
    const note = document.getElementById(`${input.id}-error`);
    note.textContent = messages.join(" ");
    note.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    marked = true;
  }
  return marked;
}

export function clearFieldErrors(inputs) {
  for (const input of Object.values(inputs)) {
    const note = document.getElementById(`${input.id}-error`);
    note.textContent = "";
    note.hidden = true;
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

// The messages that have no input on the page, each with its field, for the page's alert ("" when none).
export function otherFieldErrors(error, inputs = {}) {
  return (error.errors ?? [])
    .filter((e) => !Object.hasOwn(inputs, e.field))
    .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
    .join("; ");
}
