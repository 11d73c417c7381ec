// Marquee's web UI: a small single-page app as ES modules, routed by the URL's hash
// (`#/movies/{id}`), so every page is a link that can be shared and the server needs no
// fallback route.

import { h, leave, mount } from "./dom.js";
import { onChange, refresh, signOut } from "./session.js";

// Each page's module is fetched the first time it is shown: a customer browsing the catalog
// never downloads the dashboard's chart library or the QR code maker.
const page = (module, name) => async (...args) => (await import(module))[name](...args);
const ID = "([0-9a-f-]{36})";
const routes = [
  [/^#?\/?$/, page("./views/catalog.js", "catalog")],
  [new RegExp(`^#/movies/${ID}$`), page("./views/movie.js", "movie")],
  [new RegExp(`^#/showtimes/${ID}$`), page("./views/booking.js", "booking")],
  [new RegExp(`^#/bookings/${ID}$`), page("./views/tickets.js", "tickets")],
  [new RegExp(`^#/watch/${ID}$`), page("./views/watch.js", "watch")],
  [/^#\/plans$/, page("./views/watch.js", "plans")],
  [/^#\/account\/watching$/, page("./views/watch.js", "watching")],
  [/^#\/account(?:\/([a-z]+))?$/, (part) => page("./views/account.js", "account")(part || "")],
  [/^#\/admin(?:\/([a-z-]+))?(?:\/([0-9a-f-]{36}|new))?$/, (part, id) => page("./views/admin/index.js", "admin")(part || "", id)],
  [/^#\/signin$/, page("./views/signin.js", "signin")],
];

/// The header's account part: who is signed in, or a link to sign in.
function header(user) {
  const slot = document.getElementById("account");
  if (!user) {
    slot.replaceChildren(h("a", { href: "#/signin", onclick: () => sessionStorage.setItem("after-signin", location.hash || "#/") }, "Sign in"));
    return;
  }
  mount(
    slot,
    user.role === "admin" ? h("a", { href: "#/admin" }, "Admin") : null,
    h("a", { href: "#/account" }, "Account"),
    h("span", { class: "muted email" }, user.email || "Signed in"),
    h("button", { type: "button", class: "ghost", onclick: async () => { await signOut(); location.hash = "#/"; } }, "Sign out"),
  );
}

let drawing = 0;
async function render() {
  leave();
  const mine = ++drawing;
  const main = document.getElementById("main");
  const hash = location.hash || "#/";
  const path = hash.split("?")[0];
  for (const [pattern, view] of routes) {
    const m = path.match(pattern);
    if (m) {
      main.setAttribute("aria-busy", "true");
      try {
        const page = await view(...m.slice(1));
        // A later navigation won the race: its page is the one to show.
        if (mine === drawing) mount(main, page);
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

window.addEventListener("marquee-redraw", () => render());
window.addEventListener("hashchange", () => {
  render();
  document.getElementById("main").focus({ preventScroll: true });
});
theme();
onChange(header);
header(null);
// A reload keeps the session: the cookie brings a new access token (or nothing, signed out).
refresh().catch(() => false).finally(render);
