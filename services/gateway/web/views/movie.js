// A movie: poster, synopsis, cast, its rating with the histogram, reviews, the showtimes to
// come by theater and day, and similar movies. One call to the gateway's movie-details brings
// most of it; a part that failed is named in `partial` and simply left out.

import { api, query } from "../api.js";
import { failure, h, money, redraw } from "../dom.js";
import { current } from "../session.js";
import { card } from "./catalog.js";
import { watchlistButton } from "./watch.js";

function histogram(ratings) {
  const counts = Object.entries(ratings.histogram || {}).sort((a, b) => Number(b[0]) - Number(a[0]));
  const most = Math.max(1, ...counts.map(([, n]) => n));
  return h(
    "dl",
    { class: "histogram", "aria-label": "How many gave each rating" },
    counts.map(([stars, n]) => [
      h("dt", {}, stars),
      h("dd", {}, h("span", { class: "bar", style: `width:${(100 * n) / most}%` }), h("span", { class: "count" }, n)),
    ]),
  );
}

function day(local) {
  // `2026-12-04T19:30:00-08:00`: the theater's own day and time, as the theater shows them.
  return local ? local.slice(0, 10) : "";
}

async function showtimes(shows) {
  if (!shows.length) return h("p", { class: "muted" }, "No showtimes to come.");
  const theaters = new Map();
  await Promise.all(
    [...new Set(shows.map((s) => s.theater_id))].map(async (id) => {
      try {
        theaters.set(id, await api(`/theaters/${id}`));
      } catch {
        theaters.set(id, { name: "A theater", city: "" });
      }
    }),
  );
  const byTheater = new Map();
  for (const s of shows) {
    if (!byTheater.has(s.theater_id)) byTheater.set(s.theater_id, new Map());
    const days = byTheater.get(s.theater_id);
    const d = day(s.local_starts_at || s.starts_at);
    if (!days.has(d)) days.set(d, []);
    days.get(d).push(s);
  }
  return [...byTheater].map(([id, days]) =>
    h(
      "section",
      { class: "theater" },
      h("h3", {}, theaters.get(id).name, theaters.get(id).city ? h("span", { class: "muted" }, ` · ${theaters.get(id).city}`) : null),
      [...days].map(([d, list]) =>
        h(
          "div",
          { class: "day" },
          h("span", { class: "date" }, new Date(`${d}T12:00:00`).toLocaleDateString(undefined, { weekday: "short", month: "short", day: "numeric" })),
          list.map((s) =>
            h("a", { class: "chip", href: `#/showtimes/${s.id}`, title: money(s.price_cents, s.currency) },
              (s.local_starts_at || s.starts_at).slice(11, 16)),
          ),
        ),
      ),
    ),
  );
}

export async function movie(id) {
  let details;
  try {
    details = await api(`/movie-details/${id}`);
  } catch (e) {
    return [h("h1", {}, "Movie"), failure(e)];
  }
  const m = details.movie;
  const ratings = details.ratings;
  let reviews = [];
  try {
    reviews = (await api(`/reviews${query({ movie_id: id, per_page: 10 })}`)).items;
  } catch {
    // reviews are a nice-to-have on this page
  }
  const year = m.release_date ? m.release_date.slice(0, 4) : "";
  return [
    h(
      "article",
      { class: "movie" },
      m.poster_url ? h("img", { class: "poster", src: m.poster_url, alt: `Poster of ${m.title}`, width: 240, height: 360 }) : null,
      h(
        "div",
        { class: "about" },
        h("h1", {}, m.title, year ? h("span", { class: "muted" }, ` (${year})`) : null),
        h("p", { class: "muted" }, [m.genres.join(", "), m.runtime_minutes ? `${m.runtime_minutes} min` : null, m.director ? `directed by ${m.director}` : null].filter(Boolean).join(" · ")),
        h("p", {}, m.synopsis),
        m.cast?.length ? h("p", {}, h("strong", {}, "Cast: "), m.cast.join(", ")) : null,
        h("div", { class: "actions" },
          m.streamable ? h("a", { class: "button", href: `#/watch/${m.id}`, id: "watch" }, "▶ Watch") : null,
          m.streamable ? watchlistButton(m.id) : null),
        ratings && ratings.count > 0
          ? h("section", { class: "rating" }, h("h2", {}, `★ ${Number(ratings.average).toFixed(1)} `, h("span", { class: "muted" }, `from ${ratings.count} review${ratings.count === 1 ? "" : "s"}`)), histogram(ratings))
          : h("p", { class: "muted" }, "No reviews yet."),
      ),
    ),
    h("h2", {}, "Showtimes"),
    await showtimes(details.showtimes || []),
    reviews.length
      ? [h("h2", {}, "Reviews"), h("ul", { class: "reviews" }, reviews.map((r) =>
          h("li", {}, h("strong", {}, `${r.rating}/10 · ${r.title}`), r.verified ? h("span", { class: "badge" }, "verified") : null, h("p", {}, r.body))))]
      : null,
    current() ? reviewForm(m.id, reviews) : null,
    details.similar?.length
      ? [h("h2", {}, "Similar movies"), h("div", { class: "grid" }, details.similar.slice(0, 8).map((s) => card({ id: s.movie_id, title: s.title }, s.reason)))]
      : null,
  ];
}

/// Review the movie (once: a second review is a 409, shown as the service words it).
function reviewForm(movieId, reviews) {
  const me = current();
  if (reviews.some((r) => r.user_id === me.id)) return null;
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "stack narrow", id: "review" },
    h("h2", {}, "Your review"),
    h("div", { class: "field" }, h("label", { for: "review-rating" }, "Rating"),
      h("select", { id: "review-rating", required: true }, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n} / 10`)))),
    h("div", { class: "field" }, h("label", { for: "review-title" }, "Title"), h("input", { id: "review-title", required: true, maxlength: 200 })),
    h("div", { class: "field" }, h("label", { for: "review-body" }, "What you thought"), h("textarea", { id: "review-body", required: true, rows: 4, maxlength: 5000 })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Post the review")),
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = (id) => form.querySelector(`#${id}`).value;
    try {
      await api("/reviews", { method: "POST", body: { movie_id: movieId, rating: Number(value("review-rating")), title: value("review-title").trim(), body: value("review-body").trim() } });
      redraw();
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return form;
}
