// Marquee's web UI: a small single-page app as ES modules, routed by the URL's hash
// (`#/movies/{id}`), so every page is a link that can be shared and the server needs no
// fallback route.

import { catalog } from "./views/catalog.js";
import { movie } from "./views/movie.js";
import { h, mount } from "./dom.js";

const routes = [
  [/^#?\/?$/, () => catalog()],
  [/^#\/movies\/([0-9a-f-]{36})$/, (id) => movie(id)],
];

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
render();
