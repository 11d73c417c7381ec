// Movies: find one, create or edit it, import one by its IMDb id, upload its media (packaged
// into HLS by the streaming service), delete it.

import { api, query } from "../../api.js";
import { debounce, failure, h, items } from "../../dom.js";
import { token } from "../../session.js";
import { field, values } from "./index.js";

export async function movies(id) {
  if (id) return edit(id);
  const list = h("div", { id: "admin-movies" });
  const search = h("input", { type: "search", id: "admin-movie-q", "aria-label": "Find a movie", placeholder: "Title" });
  async function load() {
    try {
      const found = items(await api(`/movies${query({ q: search.value.trim(), per_page: 50, sort: "title" })}`));
      list.replaceChildren(h("ul", { class: "plain" }, found.map((m) => h("li", {}, h("a", { href: `#/admin/movies/${m.id}` }, m.title), h("span", { class: "muted" }, ` · ${m.release_date?.slice(0, 4) || ""}${m.streamable ? " · streamable" : ""}`)))));
    } catch (e) {
      list.replaceChildren(failure(e));
    }
  }
  search.addEventListener("input", debounce(load, 200));
  await load();
  const importMessage = h("div", { "aria-live": "assertive" });
  const importForm = h("form", { class: "actions", id: "import" }, field("imdb-id", "IMDb id", { required: true, placeholder: "tt0113277", pattern: "tt[0-9]{7,9}" }), h("button", { type: "submit" }, "Import"), importMessage);
  importForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const m = await api("/movies/import", { method: "POST", body: { imdb_id: importForm.querySelector("#imdb-id").value.trim() } });
      location.hash = `#/admin/movies/${m.id}`;
    } catch (err) {
      importMessage.replaceChildren(failure(err));
    }
  });
  return [
    h("div", { class: "actions" }, h("a", { class: "button", href: "#/admin/movies/new" }, "New movie")),
    h("h2", {}, "Import by IMDb id"),
    importForm,
    h("h2", {}, "Movies"),
    h("div", { class: "filters" }, search),
    list,
  ];
}

async function edit(id) {
  const creating = id === "new";
  const [m, genres] = await Promise.all([
    creating ? { title: "", synopsis: "", genres: [], runtime_minutes: 100, release_date: "", director: "", cast: [], poster_url: "", featured: false, streamable: false } : api(`/movies/${id}`),
    api("/genres"),
  ]);
  const message = h("div", { "aria-live": "assertive", id: "movie-message" });
  const form = h(
    "form",
    { class: "stack narrow", id: "movie-form" },
    field("title", "Title", { required: true, maxlength: 300, value: m.title }),
    field("synopsis", "Synopsis", { rows: 4, maxlength: 5000 }, "textarea", [m.synopsis || ""]),
    h("fieldset", { class: "genres" }, h("legend", {}, "Genres"),
      genres.map((g) => h("label", { class: "check" }, h("input", { type: "checkbox", "data-genre": g.slug, checked: m.genres.includes(g.slug) }), ` ${g.name}`))),
    field("runtime_minutes", "Runtime (minutes)", { type: "number", min: 1, max: 1000, required: true, value: m.runtime_minutes }),
    field("release_date", "Release date", { type: "date", value: m.release_date || "" }),
    field("director", "Director", { maxlength: 200, value: m.director || "" }),
    field("cast", "Cast (comma-separated)", { maxlength: 2000, value: (m.cast || []).join(", ") }),
    field("poster_url", "Poster URL", { type: "url", value: m.poster_url || "" }),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "featured", checked: m.featured }), " Featured"),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "streamable", checked: m.streamable }), " Streamable"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, creating ? "Create" : "Save")),
    message,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    message.replaceChildren();
    const v = values(form);
    const body = {
      title: v.title,
      synopsis: v.synopsis,
      genres: [...form.querySelectorAll("[data-genre]:checked")].map((c) => c.dataset.genre),
      runtime_minutes: Number(v.runtime_minutes),
      release_date: v.release_date || null,
      director: v.director,
      cast: v.cast ? v.cast.split(",").map((c) => c.trim()).filter(Boolean) : [],
      poster_url: v.poster_url || null,
      featured: v.featured,
      streamable: v.streamable,
    };
    try {
      const saved = await api(creating ? "/movies" : `/movies/${id}`, { method: creating ? "POST" : "PATCH", body });
      if (creating) location.hash = `#/admin/movies/${saved.id}`;
      else message.replaceChildren(h("div", { class: "notice", role: "status" }, "Saved."));
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return [
    h("p", {}, h("a", { href: "#/admin/movies" }, "← Movies")),
    h("h2", {}, creating ? "New movie" : m.title),
    form,
    creating ? null : upload(id),
    creating ? null : remove(id, m.title),
  ];
}

/// Upload the movie's media file; the body goes as it is, streamed, not as JSON.
function upload(id) {
  const status = h("p", { "aria-live": "polite", id: "upload-status" });
  api(`/media/${id}`)
    .then((media) => { status.textContent = `Media: ${media.kind}, ${(media.size_bytes / 1e6).toFixed(1)} MB${media.duration_seconds ? `, ${media.duration_seconds} s` : ""}.`; })
    .catch(() => { status.textContent = "No media yet."; });
  const file = h("input", { type: "file", id: "media-file", accept: "video/*" });
  const form = h("form", { class: "stack narrow" }, h("h2", {}, "Media"), h("div", { class: "field" }, h("label", { for: "media-file" }, "Video file"), file), h("div", { class: "actions" }, h("button", { type: "submit" }, "Upload")), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    status.textContent = `Uploading ${(chosen.size / 1e6).toFixed(1)} MB…`;
    const response = await fetch(`/api/v1/media/${id}`, { method: "PUT", body: chosen, headers: { "content-type": chosen.type || "application/octet-stream", authorization: `Bearer ${token()}` } });
    const answer = await response.json().catch(() => ({}));
    status.textContent = response.ok ? `Uploaded: ${answer.kind || "media"} ready.` : `Refused: ${answer.title || response.status}. ${answer.detail || ""}`;
  });
  return form;
}

function remove(id, title) {
  const sure = h("button", { type: "button", hidden: true, id: "delete-yes" }, `Yes, delete ${title}`);
  const ask = h("button", { type: "button", class: "ghost", onclick: () => { sure.hidden = false; ask.hidden = true; } }, "Delete this movie");
  const message = h("div", { "aria-live": "assertive" });
  sure.addEventListener("click", async () => {
    try {
      await api(`/movies/${id}`, { method: "DELETE" });
      location.hash = "#/admin/movies";
    } catch (err) {
      message.replaceChildren(failure(err));
    }
  });
  return h("div", { class: "actions" }, ask, sure, message);
}
