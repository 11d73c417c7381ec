// The dashboard: the last 30 days at a glance, and charts drawn from the analytics read models:
// revenue and refunds per day, plays per day, active subscriptions (uPlot, vendored), occupancy
// per showtime and the most popular movies (bars). Each chart has its numbers in a table too,
// for screen readers and for copying.

import { api, query } from "../../api.js";
import { h, items, money } from "../../dom.js";
import uPlot from "../../vendor/uPlot.esm.js";

function isoDay(offsetDays) {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/// A time-series chart of `series` ([label, values, colour var]) over `days` (YYYY-MM-DD).
function lineChart(id, title, days, series, format = (v) => v) {
  const box = h("figure", { class: "chart", id }, h("figcaption", {}, title));
  const x = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const width = () => Math.max(260, Math.min(box.clientWidth || 640, 720));
  const draw = () => {
    box.querySelector(".uplot")?.remove();
    new uPlot(
      {
        width: width(),
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        scales: { x: { time: true } },
        axes: [
          { stroke: css("--muted"), grid: { stroke: css("--line") } },
          // Wide enough for "$1,250.00".
          { stroke: css("--muted"), grid: { stroke: css("--line") }, size: (_, values) => 14 + 7 * Math.max(2, ...(values || []).map((v) => String(v).length)), values: (_, ticks) => ticks.map(format) },
        ],
        series: [{}, ...series.map(([label, , colour]) => ({ label, stroke: css(colour), width: 2, value: (_, v) => (v == null ? "—" : format(v)) }))],
      },
      [x, ...series.map(([, values]) => values)],
      box,
    );
  };
  // Drawn once the figure is in the page and has a width.
  requestAnimationFrame(draw);
  const table = h("details", {}, h("summary", {}, "The numbers"),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), series.map(([label]) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, days.map((d, i) => h("tr", {}, h("td", {}, d), series.map(([, values]) => h("td", {}, format(values[i]))))))));
  return h("div", {}, box, table);
}

/// Horizontal bars, one per item: [label, value, text]; a full bar is `full` (default: the largest).
function bars(id, title, rows, empty, full) {
  const most = full || Math.max(1e-9, ...rows.map(([, v]) => v));
  return h("figure", { class: "chart", id }, h("figcaption", {}, title),
    rows.length
      ? h("dl", { class: "bars" }, rows.map(([label, v, text]) => [h("dt", {}, label), h("dd", {}, h("span", { class: "bar", style: `width:${(100 * v) / most}%` }), h("span", { class: "count" }, text))]))
      : h("p", { class: "muted" }, empty));
}

export async function dashboard() {
  const from = isoDay(-29);
  const to = isoDay(0);
  const [d, revenue, plays, subs, occupancy, popular] = await Promise.all([
    api("/analytics/dashboard"),
    api(`/analytics/revenue${query({ from, to, interval: "day" })}`),
    api(`/analytics/plays${query({ from, to, interval: "day" })}`),
    api(`/analytics/subscriptions${query({ from, to, interval: "day" })}`),
    api(`/analytics/occupancy${query({ from: isoDay(-30), to: isoDay(30), per_page: 100 })}`).then(items),
    api(`/analytics/popular-movies${query({ from, to, limit: 8 })}`),
  ]);
  const cur = d.currency;
  const cents = (v) => money(v ?? 0, cur);
  const tiles = [
    ["Net revenue, 30 days", cents(d.revenue_cents_30d)],
    ["Refunds, 30 days", cents(d.refunds_cents_30d)],
    ["Bookings", d.bookings_30d],
    ["Tickets sold", d.tickets_sold_30d],
    ["Active subscriptions", d.active_subscriptions],
    ["Plays", d.plays_30d],
    ["Average occupancy", d.average_occupancy == null ? "—" : `${(d.average_occupancy * 100).toFixed(1)} %`],
  ];
  const shows = [...occupancy].sort((a, b) => b.occupancy - a.occupancy).slice(0, 10);
  return [
    h("ul", { class: "tiles", id: "tiles" }, tiles.map(([label, value]) => h("li", {}, h("span", { class: "muted" }, label), h("strong", {}, value)))),
    h("div", { class: "charts" },
      lineChart("chart-revenue", "Revenue and refunds per day", revenue.map((p) => p.period_start), [["Revenue", revenue.map((p) => p.revenue_cents), "--accent"], ["Refunds", revenue.map((p) => p.refunds_cents), "--focus"]], cents),
      lineChart("chart-plays", "Plays per day", plays.map((p) => p.period_start), [["Plays", plays.map((p) => p.plays), "--accent"], ["Completed", plays.map((p) => p.completed), "--focus"]]),
      lineChart("chart-subscriptions", "Active subscriptions", subs.map((p) => p.period_start), [["Active", subs.map((p) => p.active_at_end), "--accent"]]),
      bars("chart-occupancy", "Occupancy per showtime (the fullest ten)", shows.map((s) => [`${s.title} · ${s.starts_at.slice(0, 16).replace("T", " ")}`, s.occupancy, `${s.sold}/${s.capacity}`]), "No showtime has sold a seat yet.", 1),
      bars("chart-popular", "Popular movies: tickets and plays", popular.map((m) => [m.title, m.score, `${m.tickets} tickets · ${m.plays} plays`]), "Nothing booked or watched yet."),
    ),
  ];
}
