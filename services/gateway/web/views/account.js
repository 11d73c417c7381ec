// The customer's own pages under `#/account/…`: profile, bookings, payments, loyalty with the
// rewards to redeem, and the notifications feed. Each part asks only its own service, so one
// that is down leaves the others working.

import { api, query } from "../api.js";
import { failure, h, items, money, redraw, signInFirst, when } from "../dom.js";
import { current } from "../session.js";

const PARTS = [
  ["", "Bookings", bookings],
  ["watching", "Watching", null], // views/watch.js draws it
  ["payments", "Payments", payments],
  ["loyalty", "Loyalty", loyalty],
  ["notifications", "Notifications", notifications],
  ["profile", "Profile", profile],
];

export function accountNav(active) {
  return h(
    "nav",
    { class: "tabs", "aria-label": "Your account" },
    PARTS.map(([part, label]) =>
      h("a", { href: part ? `#/account/${part}` : "#/account", "aria-current": part === active ? "page" : false }, label),
    ),
  );
}

export async function account(part = "") {
  if (!current()) return [h("h1", {}, "Your account"), signInFirst("to see your account.")];
  const entry = PARTS.find(([p]) => p === part);
  if (!entry || !entry[2]) return [h("h1", {}, "Not found")];
  let body;
  try {
    body = await entry[2]();
  } catch (e) {
    body = failure(e);
  }
  return [h("h1", {}, "Your account"), accountNav(part), body];
}

async function bookings() {
  const list = items(await api(`/bookings${query({ per_page: 50 })}`));
  if (!list.length) return h("p", { class: "muted" }, "No bookings yet. ", h("a", { href: "#/" }, "Find a movie"));
  const titles = new Map();
  await Promise.all(
    [...new Set(list.map((b) => b.movie_id))].map(async (id) => {
      titles.set(id, (await api(`/movies/${id}`).catch(() => null))?.title || "A movie");
    }),
  );
  return h(
    "table",
    { class: "list" },
    h("caption", { class: "muted" }, "Your bookings, newest first"),
    h("thead", {}, h("tr", {}, ["Movie", "Seats", "Total", "Status", "Booked"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      list.map((b) =>
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/bookings/${b.id}` }, titles.get(b.movie_id))),
          h("td", {}, b.seats.join(", ")),
          h("td", {}, money(b.total_cents, b.currency)),
          h("td", {}, h("span", { class: `status ${b.status}` }, b.status)),
          h("td", {}, when(b.created_at)),
        ),
      ),
    ),
  );
}

async function payments() {
  const list = items(await api(`/payments${query({ per_page: 50 })}`));
  if (!list.length) return h("p", { class: "muted" }, "No payments yet.");
  return h(
    "table",
    { class: "list" },
    h("caption", { class: "muted" }, "Card payments, newest first; cards show only their last four digits"),
    h("thead", {}, h("tr", {}, ["When", "Amount", "Refunded", "Card", "Result"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      list.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, when(p.created_at)),
          h("td", {}, money(p.amount_cents, p.currency)),
          h("td", {}, p.refunded_cents ? money(p.refunded_cents, p.currency) : "—"),
          h("td", {}, p.card_last4 ? `•••• ${p.card_last4}` : "—"),
          h("td", {}, p.status === "succeeded" ? "paid" : `declined (${p.failure_code || "failed"})`),
        ),
      ),
    ),
  );
}

async function loyalty() {
  const [me, ledger, rewards] = await Promise.all([
    api("/loyalty/me"),
    api(`/loyalty/me/transactions${query({ per_page: 20 })}`).then(items),
    api(`/rewards${query({ per_page: 50 })}`).then(items),
  ]);
  const message = h("div", { "aria-live": "assertive" });
  const tier = me.tier[0].toUpperCase() + me.tier.slice(1);
  return [
    h(
      "section",
      { class: "standing" },
      h("p", { class: "big" }, h("strong", { id: "points" }, me.points), " points"),
      h("p", {}, `${tier} member · ${me.lifetime_points} lifetime points`, me.next_tier ? ` · ${me.points_to_next_tier} to ${me.next_tier}` : " · the top tier"),
      h("p", { class: "muted" }, "One point per whole unit paid for a booking, times 1.25 at silver, 1.5 at gold and 2 at platinum."),
    ),
    h("h2", {}, "Rewards"),
    rewards.filter((r) => r.active).length
      ? h(
          "ul",
          { class: "rewards" },
          rewards
            .filter((r) => r.active)
            .map((r) =>
              h(
                "li",
                {},
                h("div", {}, h("strong", {}, r.name), h("span", { class: "muted" }, ` · ${r.points_cost} points`), h("p", {}, r.description)),
                h("button", {
                  type: "button",
                  disabled: me.points < r.points_cost || r.stock === 0,
                  onclick: async (e) => {
                    e.target.disabled = true;
                    try {
                      const got = await api(`/rewards/${r.id}/redeem`, { method: "POST" });
                      message.replaceChildren(h("div", { class: "notice", role: "status" }, `Redeemed ${r.name}: show the code `, h("code", {}, got.code), " at the counter."));
                    } catch (err) {
                      message.replaceChildren(failure(err));
                      e.target.disabled = false;
                    }
                  },
                }, me.points < r.points_cost ? "Not enough points" : "Redeem"),
              ),
            ),
        )
      : h("p", { class: "muted" }, "No rewards on offer right now."),
    message,
    h("h2", {}, "Points history"),
    ledger.length
      ? h("ul", { class: "plain" }, ledger.map((e) => h("li", {}, `${when(e.created_at)} · ${e.points > 0 ? "+" : ""}${e.points} · ${e.description}`)))
      : h("p", { class: "muted" }, "Points come with your first confirmed booking."),
  ];
}

async function notifications() {
  const feed = await api(`/notifications${query({ per_page: 30 })}`);
  if (!feed.items.length) return h("p", { class: "muted" }, "Nothing yet.");
  return [
    h("p", {}, `${feed.unread} unread`),
    h(
      "ul",
      { class: "feed" },
      feed.items.map((n) =>
        h(
          "li",
          { class: n.read ? "read" : "unread" },
          h("strong", {}, n.title),
          h("span", { class: "muted" }, ` · ${when(n.created_at)}`),
          h("p", {}, n.body),
          h("div", { class: "actions" },
            n.data?.booking_id ? h("a", { href: `#/bookings/${n.data.booking_id}` }, "See the booking") : null,
            n.read
              ? null
              : h("button", { type: "button", class: "ghost", onclick: async () => { await api(`/notifications/${n.id}/read`, { method: "POST" }).catch(() => {}); redraw(); } }, "Mark as read")),
        ),
      ),
    ),
  ];
}

async function profile() {
  const me = await api("/users/me");
  const message = h("div", { "aria-live": "assertive" });
  const field = (id, label, attrs) => h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, ...attrs }));
  const form = h(
    "form",
    { class: "stack narrow" },
    h("p", {}, `${me.email} · ${me.role} · member since ${when(me.created_at, { year: "numeric", month: "long" })}`),
    field("profile-name", "Name", { value: me.name, required: true, maxlength: 100, autocomplete: "name" }),
    h("fieldset", { class: "stack" }, h("legend", {}, "Change the password (optional)"),
      field("profile-current", "Current password", { type: "password", autocomplete: "current-password" }),
      field("profile-new", "New password", { type: "password", autocomplete: "new-password", minlength: 8 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Save")),
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value;
    const body = { name: value("profile-name").trim() };
    if (value("profile-new")) Object.assign(body, { password: value("profile-new"), current_password: value("profile-current") });
    try {
      await api("/users/me", { method: "PATCH", body });
      message.replaceChildren(h("div", { class: "notice", role: "status" }, "Saved."));
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return form;
}
