// Who is signed in. The access token lives only in this module's memory; the refresh token is
// an HttpOnly cookie the gateway sets for /ui/session, which no script can read. A reload signs
// back in silently through /ui/session/refresh; the token is refreshed a minute before it runs
// out, and once more if the API refuses it.

const UI = { "x-requested-with": "marquee", accept: "application/json" };
let access = null;
let user = null;
let timer = null;
const listeners = new Set();

export function onChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn(user);
}

export function current() {
  return user;
}

export function token() {
  return access;
}

function claims(jwt) {
  try {
    return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

function keep(session) {
  access = session.access_token;
  const c = claims(access);
  user = session.user || { id: c.sub, email: c.email, role: c.role };
  user.role = user.role || c.role;
  clearTimeout(timer);
  const ms = Math.max(5, (session.expires_in || 300) - 60) * 1000;
  timer = setTimeout(() => refresh().catch(() => {}), ms);
  changed();
}

function forget() {
  access = null;
  user = null;
  clearTimeout(timer);
  changed();
}

async function post(path, body, method = "POST") {
  const init = { method, headers: { ...UI }, credentials: "same-origin" };
  if (body) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  return { ok: response.ok, status: response.status, data };
}

/// Sign in (or, with `name`, create the account first); the problem when refused.
export async function signIn(email, password, name) {
  const r = name
    ? await post("/ui/session/register", { email, password, name })
    : await post("/ui/session", { email, password });
  if (!r.ok) return r.data || { title: `HTTP ${r.status}` };
  keep(r.data);
  return null;
}

let refreshing = null;
/// A new access token from the cookie; false when there is no session.
export function refresh() {
  refreshing ||= post("/ui/session/refresh")
    .then((r) => {
      if (r.ok) keep(r.data);
      else if (r.status === 401) forget();
      return r.ok;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

export async function signOut() {
  await post("/ui/session", null, "DELETE");
  forget();
}
