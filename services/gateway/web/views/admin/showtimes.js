// Showtimes: schedule one (its start typed on the theater's own clock), see the reason when the
// room is taken, and cancel one (its bookings are cancelled and refunded by the services).

import { api, query } from "../../api.js";
import { failure, h, items, money, redraw } from "../../dom.js";
import { showtimeLabel } from "../booking.js";
import { field } from "./index.js";

/// The UTC instant of a wall-clock time (`2026-12-04T19:30`) in a time zone.
export function zonedToUtc(local, zone) {
  const [d, t] = local.split("T");
  const [y, mo, da] = d.split("-").map(Number);
  const [hh, mi] = t.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, da, hh, mi);
  const offset = (instant) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(instant).map((x) => [x.type, x.value]));
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - instant;
  };
  let guess = wall - offset(wall);
  guess = wall - offset(guess); // once more, for a start near a change of offset
  return new Date(guess).toISOString().replace(".000Z", "Z");
}

export async function showtimes() {
  const [movies, theaters] = await Promise.all([api(`/movies${query({ per_page: 100, sort: "title" })}`).then(items), api(`/theaters${query({ per_page: 100 })}`).then(items)]);
  const rooms = (await Promise.all(theaters.map((t) => api(`/theaters/${t.id}/rooms`).then(items).then((rs) => rs.map((r) => ({ ...r, theater: t })))))).flat();
  const upcoming = items(await api(`/showtimes${query({ per_page: 30 })}`));
  const message = h("div", { "aria-live": "assertive", id: "showtime-message" });
  const form = h(
    "form",
    { class: "stack narrow", id: "showtime-form" },
    h("h2", {}, "Schedule a showtime"),
    field("st-movie", "Movie", { required: true }, "select", movies.map((m) => h("option", { value: m.id }, m.title))),
    field("st-room", "Room", { required: true }, "select", rooms.map((r) => h("option", { value: r.id }, `${r.theater.name} · ${r.name} (${r.capacity} seats)`))),
    field("st-start", "Starts at (the theater's local time)", { type: "datetime-local", required: true }),
    h("div", { class: "actions" },
      field("st-price", "Price", { type: "number", min: 0, step: "0.01", value: "12.00", required: true }),
      field("st-currency", "Currency", { required: true, value: "USD", maxlength: 3, size: 4 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Schedule")),
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    message.replaceChildren();
    const room = rooms.find((r) => r.id === form.querySelector("#st-room").value);
    try {
      const show = await api("/showtimes", {
        method: "POST",
        body: {
          movie_id: form.querySelector("#st-movie").value,
          room_id: room.id,
          starts_at: zonedToUtc(form.querySelector("#st-start").value, room.theater.timezone),
          price_cents: Math.round(Number(form.querySelector("#st-price").value) * 100),
          currency: form.querySelector("#st-currency").value.trim().toUpperCase(),
        },
      });
      message.replaceChildren(h("div", { class: "notice", role: "status" }, "Scheduled. ", h("a", { href: `#/movies/${show.movie_id}` }, "See it on the movie's page")));
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return [
    form,
    h("h2", {}, "Coming up"),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Movie", "When (local)", "Price", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, upcoming.map((s) =>
        h("tr", {}, h("td", {}, s.movie_title || s.movie_id), h("td", {}, showtimeLabel(s)), h("td", {}, money(s.price_cents, s.currency)),
          h("td", {}, h("button", { type: "button", class: "ghost", "aria-label": `Cancel ${s.movie_title} at ${showtimeLabel(s)}`, onclick: async (e) => {
            if (e.target.dataset.sure !== "1") {
              e.target.dataset.sure = "1";
              e.target.textContent = "Sure? Its bookings are refunded";
              return;
            }
            try {
              await api(`/showtimes/${s.id}`, { method: "DELETE" });
              redraw();
            } catch (err) {
              message.replaceChildren(failure(err));
            }
          } }, "Cancel")))))),
  ];
}
