// The catalog: search as you type (typo-tolerant, on the server), or browse by genre and sort.
// What was asked is kept in the URL (`#/?q=heat`) without reloading, so a search can be shared.

import { api, query } from "../api.js";
import { debounce, failure, h, mount } from "../dom.js";

const SORTS = [
  ["title", "Title"],
  ["-release_date", "Newest"],
  ["-rating", "Best rated"],
];

export function card(movie, note) {
  const year = movie.release_date ? movie.release_date.slice(0, 4) : "";
  return h(
    "a",
    { class: "card", href: `#/movies/${movie.id}` },
    movie.poster_url
      ? h("img", { src: movie.poster_url, alt: "", loading: "lazy", width: 160, height: 240 })
      : h("div", { class: "poster-missing", "aria-hidden": "true" }, movie.title.slice(0, 1)),
    h("span", { class: "title" }, movie.title),
    h("span", { class: "muted" }, [year, movie.rating ? `★ ${movie.rating.toFixed(1)}` : null].filter(Boolean).join(" · ")),
    note ? h("span", { class: "note" }, note) : null,
  );
}

export async function catalog() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const state = { q: params.get("q") || "", genre: params.get("genre") || "", sort: params.get("sort") || "title" };
  const results = h("div", { class: "grid", id: "results" });
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const input = h("input", {
    type: "search",
    id: "q",
    name: "q",
    value: state.q,
    placeholder: "Search titles, cast, directors",
    autocomplete: "off",
  });
  const genre = h("select", { id: "genre", name: "genre" }, h("option", { value: "" }, "All genres"));
  const sort = h("select", { id: "sort", name: "sort" }, SORTS.map(([v, label]) => h("option", { value: v, selected: v === state.sort }, label)));
  let asked = 0;

  async function load() {
    const ticket = ++asked; // answers can arrive out of order: only the latest one is shown
    state.q = input.value.trim();
    state.genre = genre.value;
    state.sort = sort.value;
    history.replaceState(null, "", `#/${query({ q: state.q, genre: state.genre, sort: state.sort === "title" ? "" : state.sort })}`);
    genre.disabled = sort.disabled = Boolean(state.q);
    try {
      const page = state.q
        ? await api(`/movies/search${query({ q: state.q, per_page: 24 })}`)
        : await api(`/movies${query({ genre: state.genre, sort: state.sort, per_page: 24 })}`);
      if (ticket !== asked) return;
      mount(results, page.items.map((m) => card(m)));
      status.textContent = page.total === 0
        ? "No movie matches."
        : `${page.total} movie${page.total === 1 ? "" : "s"}${state.q ? ` for “${state.q}”` : ""}`;
    } catch (e) {
      if (ticket === asked) mount(results, failure(e));
    }
  }

  api("/genres")
    .then((genres) => {
      for (const g of genres) genre.append(h("option", { value: g.slug, selected: g.slug === state.genre }, `${g.name} (${g.movie_count})`));
    })
    .catch(() => {});
  input.addEventListener("input", debounce(load, 200));
  genre.addEventListener("change", load);
  sort.addEventListener("change", load);
  load();

  return [
    h("h1", {}, "Movies"),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
      h("label", { for: "q" }, "Search"),
      input,
      h("label", { for: "genre" }, "Genre"),
      genre,
      h("label", { for: "sort" }, "Sort"),
      sort,
    ),
    status,
    results,
  ];
}
