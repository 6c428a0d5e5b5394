// tally's API, on this page's own origin. The key lives in sessionStorage only: never in a URL,
// a cookie or a log, and gone when the tab closes or on "Sign out".

const STORED = "tally.key";

export class ApiError extends Error {
  constructor(status, message, fields = {}) {
    super(message);
    this.status = status;
    this.fields = fields;
  }
}

export const auth = {
  key: sessionStorage.getItem(STORED),
  onRefused: () => {}, // set by the app: a key refused (revoked) signs out
  keep(key) {
    this.key = key;
    sessionStorage.setItem(STORED, key);
  },
  forget() {
    this.key = null;
    sessionStorage.removeItem(STORED);
  },
};

// One call: {status, body, etag}, or with `etag` a 304 as {status: 304}; a refusal throws an
// ApiError with the message and fields of either dialect's error shape.
export async function call(method, path, { body, etag, key } = {}) {
  const headers = { Authorization: `Bearer ${key || auth.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", // the page sends If-None-Match itself and sees its 304s
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "tally cannot be reached; try again in a moment");
  }
  if (response.status === 304) return { status: 304, etag };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && (data.error || data)) || {};
    const refusal = new ApiError(
      response.status,
      error.message || `tally answered ${response.status}`,
      error.fields || {},
    );
    if (response.status === 401 && !key) auth.onRefused(refusal);
    throw refusal;
  }
  return { status: response.status, body: data, etag: response.headers.get("ETag") };
}

export const path = {
  counter: (name) => `/account/counters/${encodeURIComponent(name)}`,
  v2: (workspace, name) => `/v2/${encodeURIComponent(workspace)}/${encodeURIComponent(name)}`,
};

// A list the API gives a page at a time (next_cursor): more() adds the next page of 50,
// more(true) starts again from the newest, and fresh() does that only if the newest page changed
// since (If-None-Match: an unchanged one costs a 304), answering whether it did; items, total
// and done say what is loaded.
export function pages(from) {
  let newest = null; // the first page's ETag
  async function read(after, etag) {
    const query = `limit=50${after ? `&cursor=${encodeURIComponent(after)}` : ""}`;
    const answer = await call("GET", `${from}?${query}`, { etag });
    if (answer.status === 304) return false;
    const page = answer.body;
    if (!after) newest = answer.etag;
    list.items = after ? list.items.concat(page.list) : page.list;
    list.total = page.total;
    list.cursor = page.next_cursor;
    list.done = !page.next_cursor;
    return true;
  }
  const list = {
    items: [],
    total: 0,
    cursor: null,
    done: false,
    more: (again = false) => read(again ? null : list.cursor, null),
    fresh: () => read(null, newest),
  };
  return list;
}
