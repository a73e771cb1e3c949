// The public API, as the consoles use it: a token in session storage, errors as {code, message}.
const KEY = "surge.session";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  const stored = sessionStorage.getItem(KEY);
  return stored ? JSON.parse(stored) : null;
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

export async function login(username, password) {
  const body = await request("POST", "/auth/token", { username, password }, { anonymous: true });
  const who = { token: body.access_token, role: body.role, city: body.city, agentId: body.agent_id ?? null, username };
  sessionStorage.setItem(KEY, JSON.stringify(who));
  return who;
}

// `body` is sent as JSON, or as it is (a File, a Blob) when `contentType` is given.
export async function request(method, path, body = undefined, { anonymous = false, raw = false, contentType = null } = {}) {
  const headers = {};
  const who = session();
  if (!anonymous && who) headers.Authorization = `Bearer ${who.token}`;
  if (body !== undefined) headers["Content-Type"] = contentType ?? "application/json";
  const payload = body === undefined || contentType ? body : JSON.stringify(body);
  let response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload });
  } catch (error) {
    throw new ApiError(0, "network", String(error));
  }
  if (!response.ok) {
    let error = { code: "http_" + response.status, message: response.statusText };
    try {
      error = (await response.json()).error ?? error;
    } catch (_) { /* not JSON */ }
    if (response.status === 401 && !anonymous) {
      forget();
      window.dispatchEvent(new Event("surge:logged-out"));
    }
    throw new ApiError(response.status, error.code, error.message);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export const get = (path) => request("GET", path);

// The name the server gave an attachment (Content-Disposition), else `fallback`.
function fileName(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const encoded = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (encoded) {
    try {
      return decodeURIComponent(encoded[1].trim().replace(/^"|"$/g, ""));
    } catch (_) { /* fall through to the plain name */ }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : fallback;
}

// Fetch a file with the session's token and hand it to the browser as a download; its name.
export async function download(path, fallback) {
  const response = await request("GET", path, undefined, { raw: true });
  const name = fileName(response, fallback);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}
export const post = (path, body) => request("POST", path, body ?? {});

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}?token=${encodeURIComponent(session().token)}`;
}

// Small DOM helpers shared by the pages.
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const CITY_NAMES = {
  "320100": ["南京", "Nanjing"], "320200": ["无锡", "Wuxi"], "320300": ["徐州", "Xuzhou"],
  "320400": ["常州", "Changzhou"], "320500": ["苏州", "Suzhou"], "320600": ["南通", "Nantong"],
  "320700": ["连云港", "Lianyungang"], "320800": ["淮安", "Huai'an"], "320900": ["盐城", "Yancheng"],
  "321000": ["扬州", "Yangzhou"], "321100": ["镇江", "Zhenjiang"], "321200": ["泰州", "Taizhou"],
  "321300": ["宿迁", "Suqian"],
};

export function cityName(code, lang) {
  const names = CITY_NAMES[code];
  if (!names) return code;
  return lang === "en" ? names[1] : names[0];
}
