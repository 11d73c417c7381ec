// The admin pages under `#/admin/…`. The gateway and each service check the role on every call;
// hiding these pages from customers is only a courtesy.

import { failure, h } from "../../dom.js";
import { current } from "../../session.js";
import { dashboard } from "./dashboard.js";
import { door } from "./door.js";
import { movies } from "./movies.js";
import { showtimes } from "./showtimes.js";
import { users } from "./users.js";
import { theaters } from "./venues.js";

const PARTS = [
  ["", "Dashboard", dashboard],
  ["movies", "Movies", movies],
  ["theaters", "Theaters and rooms", theaters],
  ["showtimes", "Showtimes", showtimes],
  ["door", "Door check", door],
  ["users", "Users", users],
];

export async function admin(part, id) {
  if (current()?.role !== "admin") return [h("h1", {}, "Admin"), h("p", { class: "notice" }, "This part is for admins. ", h("a", { href: "#/signin" }, "Sign in as one"))];
  const entry = PARTS.find(([p]) => p === part);
  if (!entry) return [h("h1", {}, "Not found")];
  let body;
  try {
    body = await entry[2](id);
  } catch (e) {
    body = failure(e);
  }
  return [
    h("h1", {}, "Admin"),
    h("nav", { class: "tabs", "aria-label": "Admin" }, PARTS.map(([p, label]) => h("a", { href: p ? `#/admin/${p}` : "#/admin", "aria-current": p === part ? "page" : false }, label))),
    body,
  ];
}

/// A labelled input (or select/textarea when `tag` says so).
export function field(id, label, attrs = {}, tag = "input", children = []) {
  return h("div", { class: "field" }, h("label", { for: id }, label), h(tag, { id, name: id, ...attrs }, children));
}

/// The values of a form's named fields.
export function values(form) {
  return Object.fromEntries([...form.querySelectorAll("[name]")].map((el) => [el.name, el.type === "checkbox" ? el.checked : el.value.trim()]));
}
