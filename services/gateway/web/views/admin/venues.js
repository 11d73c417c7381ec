// Theaters and their rooms. A room's seats are laid out in an editor: rows and seats per row
// make the grid; a click on a row's letter makes the row premium, a click on a seat marks it
// wheelchair-accessible. What is drawn is what POST /theaters/{id}/rooms receives.

import { api, query } from "../../api.js";
import { failure, h, items, mount, redraw } from "../../dom.js";
import { field, values } from "./index.js";

export async function theaters(id) {
  if (id) return theater(id);
  const list = items(await api(`/theaters${query({ per_page: 100 })}`));
  const message = h("div", { "aria-live": "assertive" });
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
  const form = h(
    "form",
    { class: "stack narrow", id: "theater-form" },
    h("h2", {}, "New theater"),
    field("name", "Name", { required: true, maxlength: 200 }),
    field("city", "City", { required: true, maxlength: 200 }),
    field("address", "Address", { required: true, maxlength: 500 }),
    field("timezone", "Time zone", { required: true, list: "zones", value: Intl.DateTimeFormat().resolvedOptions().timeZone }),
    h("datalist", { id: "zones" }, zones.map((z) => h("option", { value: z }))),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create")),
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const t = await api("/theaters", { method: "POST", body: values(form) });
      location.hash = `#/admin/theaters/${t.id}`;
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return [
    h("h2", {}, "Theaters"),
    h("ul", { class: "plain" }, list.map((t) => h("li", {}, h("a", { href: `#/admin/theaters/${t.id}` }, t.name), h("span", { class: "muted" }, ` · ${t.city} · ${t.timezone}`)))),
    form,
  ];
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

async function theater(id) {
  const [t, rooms] = await Promise.all([api(`/theaters/${id}`), api(`/theaters/${id}/rooms`).then(items)]);
  return [
    h("p", {}, h("a", { href: "#/admin/theaters" }, "← Theaters")),
    h("h2", {}, t.name, h("span", { class: "muted" }, ` · ${t.city} · ${t.timezone}`)),
    h("h3", {}, "Rooms"),
    rooms.length ? h("ul", { class: "plain" }, rooms.map((r) => h("li", {}, `${r.name} · ${r.capacity} seats`))) : h("p", { class: "muted" }, "No rooms yet."),
    roomEditor(id),
  ];
}

function roomEditor(theaterId) {
  const premium = new Set();
  const accessible = new Set();
  const preview = h("div", { class: "seatmap", role: "group", "aria-label": "The room's seats, the screen at the top" });
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "stack", id: "room-form" },
    h("h3", {}, "New room"),
    h("div", { class: "actions" },
      field("room-name", "Name", { required: true, maxlength: 100 }),
      field("room-rows", "Rows", { type: "number", min: 1, max: 26, value: 8, required: true }),
      field("room-seats", "Seats per row", { type: "number", min: 1, max: 50, value: 12, required: true })),
    h("p", { class: "muted" }, "Click a row's letter to make it premium (1.5× the price); click a seat to mark it wheelchair-accessible."),
    preview,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create the room")),
    message,
  );
  const rows = () => LETTERS.slice(0, Math.min(26, Math.max(1, Number(form.querySelector("#room-rows").value) || 1))).split("");
  const perRow = () => Math.min(50, Math.max(1, Number(form.querySelector("#room-seats").value) || 1));
  function draw() {
    const letters = rows();
    for (const r of [...premium]) if (!letters.includes(r)) premium.delete(r);
    for (const s of [...accessible]) if (!letters.includes(s[0]) || Number(s.slice(1)) > perRow()) accessible.delete(s);
    mount(
      preview,
      h("div", { class: "screen", "aria-hidden": "true" }, "Screen"),
      letters.map((r) =>
        h("div", { class: "row" },
          h("button", { type: "button", class: "row-name ghost", "aria-pressed": String(premium.has(r)), onclick: () => { premium.has(r) ? premium.delete(r) : premium.add(r); draw(); } }, h("span", { class: "sr" }, "Row "), r, h("span", { class: "sr" }, " premium")),
          Array.from({ length: perRow() }, (_, i) => {
            const seat = `${r}${i + 1}`;
            const kind = accessible.has(seat) ? "accessible" : premium.has(r) ? "premium" : "standard";
            return h("button", { type: "button", class: `seat ${kind} available`, "aria-pressed": String(accessible.has(seat)), onclick: () => { accessible.has(seat) ? accessible.delete(seat) : accessible.add(seat); draw(); } }, h("span", { class: "sr" }, `Row ${r} seat `), i + 1, h("span", { class: "sr" }, " accessible"));
          }),
        ),
      ),
    );
  }
  form.querySelector("#room-rows").addEventListener("input", draw);
  form.querySelector("#room-seats").addEventListener("input", draw);
  draw();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/theaters/${theaterId}/rooms`, {
        method: "POST",
        body: { name: form.querySelector("#room-name").value.trim(), rows: rows(), seats_per_row: perRow(), premium_rows: [...premium].sort(), accessible_seats: [...accessible].sort() },
      });
      redraw();
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return form;
}
