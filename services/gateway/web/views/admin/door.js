// The door check: type (or scan into the field) a ticket's code; the answer says whether it
// lets its holder in, and why not.

import { api } from "../../api.js";
import { failure, h, when } from "../../dom.js";
import { field } from "./index.js";

export function door() {
  const result = h("div", { id: "door-result", "aria-live": "polite" });
  const form = h("form", { class: "stack narrow" }, field("ticket-code", "Ticket code", { required: true, autocomplete: "off", spellcheck: "false" }), h("div", { class: "actions" }, h("button", { type: "submit" }, "Check")), result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    result.replaceChildren();
    const code = form.querySelector("#ticket-code").value.trim();
    try {
      const check = await api(`/tickets/${encodeURIComponent(code)}`);
      const why = check.valid ? "Let them in." : check.booking.status !== "confirmed" ? `The booking is ${check.booking.status}.` : "The showtime is cancelled or over.";
      result.replaceChildren(
        h("div", { class: `notice ${check.valid ? "ok" : "error"}`, role: "status" },
          h("strong", {}, check.valid ? "Valid" : "Not valid"), ` · seat ${check.ticket.seat} · ${when(check.showtime.starts_at)} · ${why}`),
      );
    } catch (err) {
      result.replaceChildren(err.status === 404 ? h("div", { class: "notice error", role: "status" }, h("strong", {}, "Unknown code"), " No ticket has this code.") : failure(err));
    }
    form.querySelector("#ticket-code").select();
  });
  return form;
}
