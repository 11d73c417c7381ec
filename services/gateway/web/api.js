// Talking to the gateway: JSON in and out, the access token when signed in (refreshed once if
// the API says it ran out), and RFC 9457 problems turned into errors that carry the problem, so
// a view can show the title and detail the server wrote.

import { refresh, token } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export async function api(path, { method = "GET", body, headers = {} } = {}, retried = false) {
  const init = { method, headers: { accept: "application/json", ...headers } };
  if (token()) init.headers.authorization = `Bearer ${token()}`;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const response = await fetch(`/api/v1${path}`, init);
  if (response.status === 401 && token() && !retried && (await refresh())) {
    return api(path, { method, body, headers }, true);
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/// `?a=1&b=2` from an object, leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/// A fresh `Idempotency-Key`: sent again with a retry after no answer (a dropped connection), so
/// the server does the work once; replaced after any answer. (crypto.randomUUID needs a secure
/// context; getRandomValues does not.)
export function idempotencyKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
