// A few helpers to build the page without a framework: `h` makes an element (text is always
// text, never HTML), `mount` replaces a container's content.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter(Boolean));
}

export function money(cents, currency = "USD") {
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

/// A problem or an error as a message the user can read.
export function failure(error) {
  const title = error?.problem?.title || "Something went wrong";
  const detail = error?.problem?.detail || error?.message || "";
  return h("div", { class: "notice error", role: "alert" }, h("strong", {}, title), detail ? ` ${detail}` : "");
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const leaving = [];
/// Something to undo when the user leaves the page (an open event stream, a timer).
export function onLeave(fn) {
  leaving.push(fn);
}
export function leave() {
  while (leaving.length) leaving.pop()();
}

/// A notice asking to sign in, which comes back here afterwards.
export function signInFirst(what) {
  const back = location.hash || "#/";
  return h("p", { class: "notice" }, h("a", { href: "#/signin", onclick: () => sessionStorage.setItem("after-signin", back) }, "Sign in"), ` ${what}`);
}

export function when(iso, options = { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }) {
  return iso ? new Date(iso).toLocaleString(undefined, options) : "";
}

/// A page of `{items}` or a plain array, as an array.
export function items(page) {
  return Array.isArray(page) ? page : page?.items || [];
}

/// Draw the current page again (after a change it shows).
export function redraw() {
  window.dispatchEvent(new Event("marquee-redraw"));
}
