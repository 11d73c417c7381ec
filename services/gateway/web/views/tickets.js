// One booking: its showtime, seats and status, the tickets with their codes as QR codes (what
// the door check scans), and cancelling it with the refund policy said before the click.

import { api } from "../api.js";
import { failure, h, money, redraw, signInFirst, when } from "../dom.js";
import { current } from "../session.js";
import qrcode from "../vendor/qrcode.mjs";
import { showtimeLabel } from "./booking.js";

const STATUS = {
  held: "Held, waiting for payment",
  confirmed: "Confirmed",
  cancelled: "Cancelled",
  expired: "The hold ended",
};

/// A ticket code as a QR code image (a data: URL, drawn here, not fetched).
export function qr(text, label) {
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  return h("img", { class: "qr", src: code.createDataURL(4, 2), alt: label, width: code.getModuleCount() * 4 + 16, height: code.getModuleCount() * 4 + 16 });
}

function policy(show) {
  const hour = new Date(show.starts_at) - Date.now() - 3600 * 1000;
  return hour > 0
    ? `Cancelling at least an hour before the show refunds it in full to your card: until ${when(new Date(Date.parse(show.starts_at) - 3600 * 1000).toISOString(), { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: show.timezone || undefined, timeZoneName: "short" })}.`
    : "The show starts within the hour: a paid booking can no longer be cancelled.";
}

export async function tickets(id) {
  if (!current()) return [h("h1", {}, "Booking"), signInFirst("to see your booking.")];
  let b;
  try {
    b = await api(`/bookings/${id}`);
  } catch (e) {
    return [h("h1", {}, "Booking"), failure(e)];
  }
  const [show, movie] = await Promise.all([
    api(`/showtimes/${b.showtime_id}`).catch(() => null),
    api(`/movies/${b.movie_id}`).catch(() => ({ title: "A movie" })),
  ]);
  const theater = show ? await api(`/theaters/${show.theater_id}`).catch(() => ({ name: "A theater" })) : { name: "" };
  const message = h("div", { "aria-live": "assertive" });
  const live = b.status === "held" || b.status === "confirmed";
  const cancel = live
    ? h("button", { type: "button", class: "ghost", id: "cancel" }, b.status === "held" ? "Release the seats" : "Cancel and refund")
    : null;
  // Asked once more inside the page rather than with confirm(), which some browsers suppress.
  const sure = h("div", { class: "actions", hidden: true },
    h("span", {}, b.status === "held" ? "Release these seats?" : `Cancel and refund ${money(b.total_cents, b.currency)}?`),
    h("button", { type: "button", id: "cancel-yes", onclick: async (e) => {
      e.target.disabled = true;
      try {
        await api(`/bookings/${id}/cancel`, { method: "POST" });
        redraw();
      } catch (err) {
        message.replaceChildren(failure(err));
        e.target.disabled = false;
      }
    } }, "Yes"),
    h("button", { type: "button", class: "ghost", onclick: () => { sure.hidden = true; cancel.hidden = false; } }, "No, keep it"));
  cancel?.addEventListener("click", () => {
    cancel.hidden = true;
    sure.hidden = false;
  });
  return [
    h("p", {}, h("a", { href: "#/account" }, "← Your account")),
    h("h1", {}, movie.title),
    h("p", { class: "muted" }, [theater.name, show ? showtimeLabel(show) : null].filter(Boolean).join(" · ")),
    h("p", {}, h("span", { class: `status ${b.status}`, id: "booking-status" }, STATUS[b.status] || b.status), ` · seats ${b.seats.join(", ")} · ${money(b.total_cents, b.currency)}`),
    b.status === "held" ? h("p", {}, `Held until ${when(b.expires_at)}. `, h("a", { href: `#/showtimes/${b.showtime_id}` }, "Back to the seat map")) : null,
    b.tickets?.length
      ? h(
          "ul",
          { class: "tickets", "aria-label": "Tickets" },
          b.tickets.map((t) =>
            h("li", { class: "ticket" }, qr(t.code, `QR code of the ticket for seat ${t.seat}`), h("div", {}, h("strong", {}, `Seat ${t.seat}`), h("code", { class: "code" }, t.code))),
          ),
        )
      : null,
    cancel && show ? h("p", { class: "muted" }, b.status === "held" ? "Nothing was charged: releasing puts the seats back on sale." : policy(show)) : null,
    cancel ? h("div", { class: "actions" }, cancel) : null,
    cancel ? sure : null,
    message,
  ];
}
