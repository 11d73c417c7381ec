// Users and roles: find someone by email or name, and make them an admin or a customer.

import { api, query } from "../../api.js";
import { debounce, failure, h, items, when } from "../../dom.js";
import { current } from "../../session.js";

export async function users() {
  const list = h("div", { id: "user-list" });
  const search = h("input", { type: "search", id: "user-q", "aria-label": "Find users by email or name", placeholder: "Email or name" });
  async function load() {
    try {
      const found = items(await api(`/users${query({ q: search.value.trim(), per_page: 50 })}`));
      list.replaceChildren(
        h("table", { class: "list" },
          h("thead", {}, h("tr", {}, ["Name", "Email", "Since", "Role"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, found.map((u) => {
            const role = h("select", { "aria-label": `Role of ${u.email}`, disabled: u.id === current().id }, ["customer", "admin"].map((r) => h("option", { value: r, selected: r === u.role }, r)));
            role.addEventListener("change", async () => {
              try {
                await api(`/users/${u.id}`, { method: "PATCH", body: { role: role.value } });
              } catch (e) {
                role.value = u.role;
                list.prepend(failure(e));
              }
            });
            return h("tr", {}, h("td", {}, u.name), h("td", {}, u.email), h("td", {}, when(u.created_at, { year: "numeric", month: "short", day: "numeric" })), h("td", {}, role));
          }))));
    } catch (e) {
      list.replaceChildren(failure(e));
    }
  }
  search.addEventListener("input", debounce(load, 200));
  await load();
  return [h("div", { class: "filters" }, search), list];
}
