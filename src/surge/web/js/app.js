// The console shell: log in, a page per role, the language switch, a status banner.
import { el, forget, login, session } from "./api.js";
import { language, onLanguage, setLanguage, t, translate } from "./i18n.js";

const PAGES = {
  agent: { roles: ["agent"], load: () => import("./agent.js") },
  coordinator: { roles: ["coordinator"], load: () => import("./coordinator.js") },
  admin: { roles: ["city_admin"], load: () => import("./admin.js") },
  reports: { roles: ["coordinator", "city_admin"], load: () => import("./reports.js") },
  tickets: { roles: ["coordinator", "city_admin"], load: () => import("./tickets.js") },
  users: { roles: ["coordinator", "city_admin"], load: () => import("./users.js") },
};
const HOME = { agent: "agent", coordinator: "coordinator", city_admin: "admin" };

const view = document.getElementById("view");
let unmount = null;

// `text` is a string, or a function giving it in the language of the moment: a switch of
// language says it again in the new one.
let bannerText = "";
export function banner(text, kind = "info") {
  bannerText = text;
  const element = document.getElementById("banner");
  element.textContent = typeof text === "function" ? text() : text;
  element.className = `banner ${kind}`;
  element.hidden = !element.textContent;
}

function renderNav(who) {
  const nav = document.getElementById("nav");
  nav.replaceChildren();
  document.getElementById("logout").hidden = !who;
  document.getElementById("who").textContent = who ? `${who.username} · ${t("role." + who.role)}` : "";
  if (!who) return;
  for (const [name, page] of Object.entries(PAGES)) {
    if (!page.roles.includes(who.role)) continue;
    const current = location.hash === `#/${name}`;
    nav.append(el("a", { href: `#/${name}`, "aria-current": current ? "page" : null, "data-i18n": `nav.${name}` }, t(`nav.${name}`)));
  }
}

function loginView() {
  const error = el("p", { class: "error", role: "alert" });
  const form = el(
    "form",
    { class: "card login", "aria-labelledby": "login-title" },
    el("h1", { id: "login-title", "data-i18n": "login.title" }),
    el("label", { for: "username", "data-i18n": "login.username" }),
    el("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    el("label", { for: "password", "data-i18n": "login.password" }),
    el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    el("button", { type: "submit", class: "primary", "data-i18n": "login.submit" }),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const who = await login(form.username.value.trim(), form.password.value);
      go(`#/${HOME[who.role] ?? "reports"}`);
    } catch (failure) {
      error.textContent = failure.code === "network" ? t("error.network") : failure.message;
    }
  });
  return form;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash; // hashchange routes
}

let routing = 0;
async function route() {
  const current = ++routing;
  if (unmount) {
    unmount();
    unmount = null;
  }
  banner("");
  const who = session();
  renderNav(who);
  view.replaceChildren();
  if (!who) {
    view.append(loginView());
    translate(view);
    view.querySelector("input").focus();
    return;
  }
  const name = location.hash.replace(/^#\//, "") || HOME[who.role] || "reports";
  const page = PAGES[name];
  if (!page || !page.roles.includes(who.role)) {
    view.append(el("p", { class: "error" }, t("error.forbidden")));
    return;
  }
  const module = await page.load();
  if (current !== routing) return; // a newer route took over while this page loaded
  unmount = module.mount(view, { who, banner }) || null;
  translate(view);
}

document.getElementById("lang").addEventListener("click", () => setLanguage(language() === "zh" ? "en" : "zh"));
document.getElementById("logout").addEventListener("click", () => {
  forget();
  go("");
});
onLanguage((code) => {
  const switcher = document.getElementById("lang");
  switcher.textContent = t("app.lang");
  switcher.lang = code === "zh" ? "en" : "zh-CN";
  renderNav(session());
  if (typeof bannerText === "function") document.getElementById("banner").textContent = bannerText();
});
window.addEventListener("hashchange", route);
window.addEventListener("surge:logged-out", route);
setLanguage(language());
route();
