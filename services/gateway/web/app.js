// Marquee's web UI: a small single-page app as ES modules, routed by the URL's hash
// (`#/movies/{id}`), so every page is a link that can be shared and the server needs no
// fallback route.

import { catalog } from "./views/catalog.js";
import { movie } from "./views/movie.js";
import { signin } from "./views/signin.js";
import { h, mount } from "./dom.js";
import { current, onChange, refresh, signOut } from "./session.js";

const routes = [
  [/^#?\/?$/, () => catalog()],
  [/^#\/movies\/([0-9a-f-]{36})$/, (id) => movie(id)],
  [/^#\/signin$/, () => signin()],
];

/// The header's account part: who is signed in, or a link to sign in.
function account(user) {
  const slot = document.getElementById("account");
  if (!user) {
    slot.replaceChildren(h("a", { href: "#/signin", onclick: () => sessionStorage.setItem("after-signin", location.hash || "#/") }, "Sign in"));
    return;
  }
  slot.replaceChildren(
    h("span", { class: "muted" }, user.email || "Signed in"),
    h("button", { type: "button", class: "ghost", onclick: async () => { await signOut(); location.hash = "#/"; } }, "Sign out"),
  );
}

async function render() {
  const main = document.getElementById("main");
  const hash = location.hash || "#/";
  const path = hash.split("?")[0];
  for (const [pattern, view] of routes) {
    const m = path.match(pattern);
    if (m) {
      main.setAttribute("aria-busy", "true");
      try {
        mount(main, await view(...m.slice(1)));
      } finally {
        main.removeAttribute("aria-busy");
      }
      return;
    }
  }
  mount(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the movies")));
}

function theme() {
  const saved = localStorage.getItem("theme");
  if (saved) document.documentElement.dataset.theme = saved;
  document.getElementById("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("theme", next); // a preference, not a secret
  });
}

window.addEventListener("hashchange", () => {
  render();
  document.getElementById("main").focus({ preventScroll: true });
});
theme();
onChange(account);
account(null);
// A reload keeps the session: the cookie brings a new access token (or nothing, signed out).
refresh().catch(() => false).finally(render);
