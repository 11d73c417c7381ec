// Booking a showtime: the seat map (kept live by the booking service's Server-Sent Events, so a
// seat someone else holds turns unavailable without a reload), the price of what is chosen,
// the hold with its countdown, and paying with a card. Declines are shown as the processor
// words them; the hold stays until it ends, so the user can try another card.

import { ApiError, api, idempotencyKey } from "../api.js";
import { failure, h, money, mount, onLeave, signInFirst } from "../dom.js";
import { current } from "../session.js";
import { cardFields, cardOf, declined } from "./card.js";

const MAX_SEATS = 10;

/// `2026-12-04T19:30:00-08:00` as the theater shows it: "Fri, Dec 4 · 19:30".
export function showtimeLabel(s) {
  const local = s.local_starts_at || s.starts_at;
  const date = new Date(`${local.slice(0, 10)}T12:00:00`).toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" });
  return `${date} · ${local.slice(11, 16)}`;
}

/// What a screen reader says after "Row E, seat 5": the kind, the price, whether it is free.
function seatState(seat) {
  const kind = seat.kind === "standard" ? "" : `, ${seat.kind}`;
  return `${kind}, ${money(seat.price_cents)}, ${seat.status}`;
}

export async function booking(id) {
  let show, map;
  try {
    [show, map] = await Promise.all([api(`/showtimes/${id}`), api(`/showtimes/${id}/seats`)]);
  } catch (e) {
    return [h("h1", {}, "Showtime"), failure(e)];
  }
  const [movie, theater] = await Promise.all([
    api(`/movies/${show.movie_id}`).catch(() => ({ title: "A movie", id: show.movie_id })),
    api(`/theaters/${show.theater_id}`).catch(() => ({ name: "A theater" })),
  ]);
  const currency = show.currency;
  const chosen = new Set();
  const seats = new Map(); // seat -> {data, button}
  const summary = h("p", { id: "summary", "aria-live": "polite" });
  const holdButton = h("button", { type: "button", id: "hold", disabled: true }, "Hold seats");
  const message = h("div", { id: "booking-message", "aria-live": "assertive" });
  const checkout = h("section", { id: "checkout", hidden: true });

  function paint(seat) {
    const { data, button } = seats.get(seat);
    const mine = chosen.has(seat);
    button.className = `seat ${data.kind} ${data.status}${mine ? " chosen" : ""}`;
    button.disabled = data.status !== "available" && !mine;
    button.setAttribute("aria-pressed", String(mine));
    button.querySelector(".state").textContent = seatState(data);
    button.dataset.status = data.status;
  }

  function total() {
    return [...chosen].reduce((sum, s) => sum + seats.get(s).data.price_cents, 0);
  }

  function update() {
    const n = chosen.size;
    summary.textContent = n
      ? `${n} seat${n === 1 ? "" : "s"}: ${[...chosen].sort().join(", ")} · ${money(total(), currency)}`
      : "Choose up to 10 seats.";
    holdButton.disabled = n === 0;
    holdButton.hidden = !checkout.hidden; // held: paying is the next step
  }

  function toggle(seat) {
    if (!checkout.hidden) return; // the hold is made: its seats are fixed
    holdKey = idempotencyKey(); // other seats: another request
    if (chosen.has(seat)) chosen.delete(seat);
    else if (chosen.size < MAX_SEATS && seats.get(seat).data.status === "available") chosen.add(seat);
    paint(seat);
    update();
  }

  const grid = h(
    "div",
    { class: "seatmap", role: "group", "aria-label": "Seats, the screen at the top" },
    h("div", { class: "screen", "aria-hidden": "true" }, "Screen"),
    map.rows.map((row) =>
      h(
        "div",
        { class: "row" },
        h("span", { class: "row-name", "aria-hidden": "true" }, row.row),
        row.seats.map((data) => {
          // The number shows; the rest is said to screen readers only (its visible part stays in
          // the accessible name, for voice control).
          const button = h("button", { type: "button", "data-seat": data.seat, onclick: () => toggle(data.seat) },
            h("span", { class: "sr" }, `Row ${row.row}, seat `), data.seat.slice(row.row.length), h("span", { class: "sr state" }));
          seats.set(data.seat, { data, button });
          return button;
        }),
      ),
    ),
  );
  for (const seat of seats.keys()) paint(seat);
  update();

  async function reload() {
    try {
      const fresh = await api(`/showtimes/${id}/seats`);
      for (const row of fresh.rows) for (const data of row.seats) setStatus(data.seat, data.status);
    } catch {
      // the stream keeps the map close enough; the next change corrects it
    }
  }

  function setStatus(seat, status) {
    const entry = seats.get(seat);
    if (!entry) return;
    entry.data.status = status;
    // A seat chosen here but taken by someone else is no longer chosen (unless we hold it).
    if (chosen.has(seat) && status !== "available" && checkout.hidden) chosen.delete(seat);
    paint(seat);
    update();
  }

  const stream = new EventSource(`/api/v1/showtimes/${id}/seats/stream`);
  stream.addEventListener("seat", (e) => {
    try {
      const change = JSON.parse(e.data);
      setStatus(change.seat, change.status);
    } catch {
      // not a seat change we understand
    }
  });
  stream.addEventListener("lagged", reload);
  // After a dropped connection (EventSource reconnects by itself) the changes missed meanwhile
  // are not replayed: read the whole map again.
  stream.addEventListener("open", () => {
    if (stream.opened) reload();
    stream.opened = true;
  });
  onLeave(() => stream.close());

  let holdKey = idempotencyKey();
  holdButton.addEventListener("click", async () => {
    message.replaceChildren();
    if (!current()) {
      message.replaceChildren(signInFirst("to hold these seats."));
      return;
    }
    holdButton.disabled = true;
    try {
      const held = await api("/bookings", { method: "POST", body: { showtime_id: id, seats: [...chosen].sort() }, headers: { "idempotency-key": holdKey } });
      showCheckout(held);
    } catch (e) {
      if (e instanceof ApiError) holdKey = idempotencyKey();
      const taken = e.problem?.unavailable;
      if (taken?.length) {
        for (const s of taken) setStatus(s, "held");
        message.replaceChildren(h("div", { class: "notice error", role: "alert" }, `Someone else just took ${taken.join(", ")}. Choose other seats.`));
      } else {
        message.replaceChildren(failure(e));
      }
      update();
    }
  });

  function showCheckout(held) {
    checkout.hidden = false;
    update();
    const left = h("strong", { id: "countdown" });
    const tick = () => {
      const ms = new Date(held.expires_at) - Date.now();
      if (ms <= 0) {
        left.textContent = "0:00";
        clearInterval(timer);
        mount(checkout, h("div", { class: "notice error", role: "alert" }, "The hold ended and the seats went back on sale."), h("a", { class: "button", href: location.hash, onclick: () => setTimeout(() => location.reload()) }, "Choose again"));
        return;
      }
      const s = Math.floor(ms / 1000);
      left.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    };
    const timer = setInterval(tick, 1000);
    onLeave(() => clearInterval(timer));
    tick();
    mount(
      checkout,
      h("h2", {}, "Pay"),
      h("p", {}, `Seats ${held.seats.join(", ")} are held for you for `, left, `. Total ${money(held.total_cents, held.currency)}.`),
      payForm(held, () => clearInterval(timer)),
    );
    checkout.querySelector("input")?.focus();
  }

  return [
    h("p", {}, h("a", { href: `#/movies/${movie.id}` }, `← ${movie.title}`)),
    h("h1", {}, movie.title),
    h("p", { class: "muted" }, `${theater.name} · ${showtimeLabel(show)} · from ${money(show.price_cents, currency)}`),
    h(
      "ul",
      { class: "legend", "aria-label": "Legend" },
      h("li", {}, h("span", { class: "seat standard available", "aria-hidden": "true" }), ` Standard ${money(show.price_cents, currency)}`),
      h("li", {}, h("span", { class: "seat premium available", "aria-hidden": "true" }), ` Premium ${money(Math.round(show.price_cents * 1.5), currency)}`),
      h("li", {}, h("span", { class: "seat accessible available", "aria-hidden": "true" }), " Wheelchair accessible"),
      h("li", {}, h("span", { class: "seat standard held", "aria-hidden": "true" }), " Taken"),
    ),
    grid,
    summary,
    h("div", { class: "actions" }, holdButton),
    message,
    checkout,
  ];
}

/// The card form; on success, the booking's page with its tickets.
function payForm(held, done) {
  const error = h("div", { id: "pay-error", "aria-live": "assertive" });
  const submit = h("button", { type: "submit" }, `Pay ${money(held.total_cents, held.currency)}`);
  const form = h(
    "form",
    { class: "stack narrow", id: "pay" },
    cardFields("card"),
    h("p", { class: "muted" }, "Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined; 4000 0000 0000 9995 has insufficient funds."),
    h("div", { class: "actions" }, submit),
    error,
  );
  let key = idempotencyKey();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.replaceChildren();
    submit.disabled = true;
    submit.textContent = "Paying…";
    try {
      const paid = await api(`/bookings/${held.id}/pay`, {
        method: "POST",
        body: { payment_method: cardOf(form, "card") },
        headers: { "idempotency-key": key },
      });
      done();
      location.hash = `#/bookings/${paid.id}`;
    } catch (err) {
      if (err instanceof ApiError) key = idempotencyKey(); // answered: the next try is a new one
      const words = declined(err);
      error.replaceChildren(
        words ? h("div", { class: "notice error", role: "alert" }, h("strong", {}, words), " The seats stay held: try another card.") : failure(err),
      );
      submit.disabled = false;
      submit.textContent = `Pay ${money(held.total_cents, held.currency)}`;
    }
  });
  return form;
}
