// Streaming: the plans and subscribing, the player, and "continue watching" with the watchlist.
//
// The player starts a playback session (which counts against the plan's streams), plays the
// signed URL it is given (HLS through the vendored hls.js where the browser has Media Source
// Extensions, the browser's own HLS elsewhere, such as iOS Safari; a plain MP4 as it is), starts
// where the user stopped last, reports the position every ten seconds and at pause, and ends the
// session when the user stops or leaves the page, so the slot is free at once.

import { ApiError, api, idempotencyKey } from "../api.js";
import { failure, h, items, money, onLeave, redraw, signInFirst, when } from "../dom.js";
import { current, token } from "../session.js";
import { accountNav } from "./account.js";
import { cardFields, cardOf, declined } from "./card.js";

const HEARTBEAT_MS = 10_000;

export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return (hms[0] ? `${hms[0]}:` : "") + `${hms[0] ? String(hms[1]).padStart(2, "0") : hms[1]}:${String(hms[2]).padStart(2, "0")}`;
}

async function subscription() {
  try {
    return await api("/subscriptions/me");
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

export async function plans() {
  let list, mine;
  try {
    [list, mine] = await Promise.all([api("/plans"), current() ? subscription() : null]);
  } catch (e) {
    return [h("h1", {}, "Plans"), failure(e)];
  }
  const message = h("div", { "aria-live": "assertive", id: "subscribe-message" });
  const active = mine && mine.status === "active";
  let chosen = null;
  const form = h(
    "form",
    { class: "stack narrow", id: "subscribe", hidden: true },
    h("h2", { id: "subscribe-title" }, "Subscribe"),
    cardFields("sub"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Subscribe")),
    message,
  );
  let key = idempotencyKey();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/subscriptions", { method: "POST", body: { plan_id: chosen.id, payment_method: cardOf(form, "sub") }, headers: { "idempotency-key": key } });
      const back = sessionStorage.getItem("after-subscribe");
      sessionStorage.removeItem("after-subscribe");
      location.hash = back || "#/account/watching";
    } catch (err) {
      if (err instanceof ApiError) key = idempotencyKey();
      const words = declined(err);
      message.replaceChildren(words ? h("div", { class: "notice error", role: "alert" }, words) : failure(err));
    }
  });
  return [
    h("h1", {}, "Plans"),
    active ? h("p", { class: "notice" }, `You are on the ${mine.plan_id} plan until ${when(mine.current_period_end, { year: "numeric", month: "long", day: "numeric" })}. `, h("a", { href: "#/account/watching" }, "Manage it")) : null,
    h(
      "ul",
      { class: "plans" },
      list.map((p) =>
        h(
          "li",
          { class: "plan" },
          h("h2", {}, p.name),
          h("p", { class: "big" }, money(p.price_cents, p.currency), h("span", { class: "muted" }, " a month")),
          h("p", {}, `${p.max_streams} screen${p.max_streams === 1 ? "" : "s"} at once`),
          current()
            ? h("button", { type: "button", disabled: active, "data-plan": p.id, onclick: () => {
                chosen = p;
                form.hidden = false;
                form.querySelector("#subscribe-title").textContent = `Subscribe to ${p.name}: ${money(p.price_cents, p.currency)} a month`;
                form.querySelector("input").focus();
              } }, active ? "Subscribed" : `Choose ${p.name}`)
            : null,
        ),
      ),
    ),
    current() ? form : signInFirst("to subscribe."),
  ];
}

export async function watch(movieId) {
  if (!current()) return [h("h1", {}, "Watch"), signInFirst("to watch.")];
  const movie = await api(`/movies/${movieId}`).catch(() => ({ title: "A movie" }));
  let session;
  try {
    session = await api("/playback/start", { method: "POST", body: { movie_id: movieId } });
  } catch (e) {
    const why =
      e.status === 403
        ? h("p", { class: "notice", role: "alert" }, "Watching needs a subscription. ", h("a", { href: "#/plans", onclick: () => sessionStorage.setItem("after-subscribe", location.hash) }, "See the plans"))
        : e.status === 409
          ? h("p", { class: "notice error", role: "alert", id: "stream-limit" }, h("strong", {}, "Your plan's screens are all in use. "), `${e.problem.detail || ""} Stop watching on another screen, or `, h("a", { href: "#/plans" }, "move to a bigger plan"), ".")
          : failure(e);
    return [h("h1", {}, movie.title), why];
  }
  const video = h("video", { controls: true, playsinline: true, preload: "auto", id: "player", "aria-label": `${movie.title}` });
  const status = h("p", { id: "playback-status", "aria-live": "polite" }, session.resume_position_seconds ? `Resuming at ${clock(session.resume_position_seconds)}` : "From the start");
  let ended = false;
  let hls = null;
  const position = () => Math.floor(video.currentTime || 0);
  const report = (what) =>
    api(`/playback/${session.session_id}/${what}`, { method: "POST", body: { position_seconds: position() } }).catch(() => {});

  // The player: hls.js where Media Source Extensions exist, else the browser's own HLS.
  if (session.kind === "hls") {
    const { default: Hls } = await import("../vendor/hls.light.min.mjs");
    if (Hls.isSupported()) {
      hls = new Hls({ startPosition: session.resume_position_seconds || -1 });
      hls.loadSource(session.stream_url);
      hls.attachMedia(video);
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) status.textContent = `The stream stopped: ${data.details}`;
      });
    } else {
      video.src = session.stream_url;
    }
  } else {
    video.src = session.stream_url;
  }
  video.addEventListener("loadedmetadata", () => {
    if (session.resume_position_seconds && Math.abs(video.currentTime - session.resume_position_seconds) > 1) {
      video.currentTime = session.resume_position_seconds;
    }
  });
  video.addEventListener("pause", () => !ended && report("heartbeat"));
  const beat = setInterval(() => !video.paused && report("heartbeat"), HEARTBEAT_MS);

  async function stop() {
    if (ended) return;
    ended = true;
    clearInterval(beat);
    video.pause();
    const at = position();
    await report("stop");
    hls?.destroy();
    status.textContent = `Stopped at ${clock(at)}. Come back to carry on from there.`;
    stopButton.disabled = true;
  }
  const stopButton = h("button", { type: "button", id: "stop", onclick: stop }, "Stop");
  // Leaving the page (another route, closing the tab) ends the session too; `keepalive` lets
  // the request outlive the page.
  const leaveNow = () => {
    if (ended) return;
    ended = true;
    clearInterval(beat);
    fetch(`/api/v1/playback/${session.session_id}/stop`, {
      method: "POST",
      keepalive: true,
      headers: { "content-type": "application/json", authorization: `Bearer ${token()}` },
      body: JSON.stringify({ position_seconds: position() }),
    }).catch(() => {});
    hls?.destroy();
  };
  window.addEventListener("pagehide", leaveNow);
  onLeave(() => {
    window.removeEventListener("pagehide", leaveNow);
    leaveNow();
  });

  return [
    h("p", {}, h("a", { href: `#/movies/${movieId}` }, `← ${movie.title}`)),
    h("h1", {}, movie.title),
    h("div", { class: "player" }, video),
    status,
    h("div", { class: "actions" }, stopButton, watchlistButton(movieId)),
  ];
}

/// Add to or take off the watchlist.
export function watchlistButton(movieId) {
  const button = h("button", { type: "button", class: "ghost", id: "watchlist-toggle", "aria-pressed": "false" }, "Add to watchlist");
  if (!current()) return null;
  let on = false;
  const show = () => {
    button.textContent = on ? "On your watchlist ✓" : "Add to watchlist";
    button.setAttribute("aria-pressed", String(on));
  };
  api("/watchlist")
    .then((list) => {
      on = list.some((e) => e.movie_id === movieId);
      show();
    })
    .catch(() => {});
  button.addEventListener("click", async () => {
    try {
      await api(`/watchlist/${movieId}`, { method: on ? "DELETE" : "PUT" });
      on = !on;
      show();
    } catch {
      // left as it was
    }
  });
  return button;
}

/// `#/account/watching`: the subscription, what to carry on with, the watchlist.
export async function watching() {
  if (!current()) return [h("h1", {}, "Your account"), signInFirst("to see your account.")];
  let mine, history, list;
  try {
    [mine, history, list] = await Promise.all([subscription(), api("/playback/history"), api("/watchlist")]);
  } catch (e) {
    return [h("h1", {}, "Your account"), accountNav("watching"), failure(e)];
  }
  const titles = new Map();
  await Promise.all(
    [...new Set([...history, ...list].map((e) => e.movie_id))].map(async (id) => {
      titles.set(id, (await api(`/movies/${id}`).catch(() => null))?.title || "A movie");
    }),
  );
  const going = items(history).filter((p) => !p.completed);
  const message = h("div", { "aria-live": "assertive" });
  return [
    h("h1", {}, "Your account"),
    accountNav("watching"),
    h("h2", {}, "Subscription"),
    mine
      ? h("p", { id: "subscription" }, `${mine.plan_id} plan, ${mine.status}`, mine.cancel_at_period_end ? `, ends ${when(mine.current_period_end)}` : `, renews ${when(mine.current_period_end)}`, mine.card_last4 ? ` · card •••• ${mine.card_last4}` : "",
          mine.status === "active" && !mine.cancel_at_period_end
            ? h("button", { type: "button", class: "ghost", onclick: async () => {
                try {
                  await api("/subscriptions/me", { method: "DELETE" });
                  redraw();
                } catch (e) {
                  message.replaceChildren(failure(e));
                }
              } }, "Cancel at the period's end")
            : null)
      : h("p", {}, "No subscription. ", h("a", { href: "#/plans" }, "See the plans")),
    message,
    h("h2", {}, "Continue watching"),
    going.length
      ? h("ul", { class: "plain", id: "continue" }, going.map((p) =>
          h("li", {}, h("a", { href: `#/watch/${p.movie_id}` }, titles.get(p.movie_id)), h("span", { class: "muted" }, ` · at ${clock(p.position_seconds)} of ${clock(p.duration_seconds)} · ${when(p.last_watched_at)}`))))
      : h("p", { class: "muted" }, "Nothing started."),
    h("h2", {}, "Watchlist"),
    list.length
      ? h("ul", { class: "plain", id: "watchlist" }, list.map((e) => h("li", {}, h("a", { href: `#/movies/${e.movie_id}` }, titles.get(e.movie_id)))))
      : h("p", { class: "muted" }, "Empty: add movies from their pages."),
  ];
}
