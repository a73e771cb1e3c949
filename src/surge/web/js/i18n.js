// Chinese by default, English on demand. Pages add their own strings with `add`.
const strings = { zh: {}, en: {} };
const listeners = [];
let lang = localStorage.getItem("surge.lang") === "en" ? "en" : "zh";

export function add(table) {
  for (const code of ["zh", "en"]) Object.assign(strings[code], table[code] || {});
}

export function language() {
  return lang;
}

export function t(key, values = {}) {
  const text = strings[lang][key] ?? strings.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

export function setLanguage(code) {
  lang = code === "en" ? "en" : "zh";
  localStorage.setItem("surge.lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  translate(document);
  for (const listener of listeners) listener(lang);
}

// Call `listener(code)` on every switch; returns a function that stops it (for a page's cleanup).
export function onLanguage(listener) {
  listeners.push(listener);
  return () => {
    const index = listeners.indexOf(listener);
    if (index >= 0) listeners.splice(index, 1);
  };
}

// Fill every element marked data-i18n (text) or data-i18n-label (aria-label, placeholder).
export function translate(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    const text = t(element.dataset.i18nLabel);
    element.setAttribute("aria-label", text);
    if ("placeholder" in element) element.placeholder = text;
  }
}

add({
  zh: {
    "app.title": "12345 多援一", "app.logout": "退出", "app.lang": "English",
    "nav.agent": "坐席", "nav.coordinator": "省级统筹", "nav.admin": "答复口径", "nav.reports": "数据日报", "nav.users": "用户管理",
    "login.title": "登录", "login.username": "用户名", "login.password": "密码", "login.submit": "登录",
    "role.agent": "坐席", "role.coordinator": "省级统筹", "role.city_admin": "城市管理员", "role.cti": "话务接口",
    "error.network": "网络连接失败，请重试", "error.forbidden": "无权访问此页面",
  },
  en: {
    "app.title": "12345 Surge", "app.logout": "Log out", "app.lang": "中文",
    "nav.agent": "Agent", "nav.coordinator": "Coordinator", "nav.admin": "Scripts", "nav.reports": "Reports", "nav.users": "Users",
    "login.title": "Log in", "login.username": "User name", "login.password": "Password", "login.submit": "Log in",
    "role.agent": "Agent", "role.coordinator": "Coordinator", "role.city_admin": "City admin", "role.cti": "Telephony",
    "error.network": "The network failed; try again", "error.forbidden": "You may not open this page",
  },
});

// The ticket list's navigation link, shown before its page (which adds the rest) is loaded.
add({ zh: { "nav.tickets": "工单查询" }, en: { "nav.tickets": "Tickets" } });
