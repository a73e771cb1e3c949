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

// --- durations: every wait, handling time and threshold in seconds is written this one way --------
add({
  zh: { "time.s": "{n} 秒", "time.min_s": "{m} 分 {s} 秒", "time.min": "{m} 分", "time.h_min": "{h} 小时 {m} 分" },
  en: { "time.s": "{n} s", "time.min_s": "{m} min {s} s", "time.min": "{m} min", "time.h_min": "{h} h {m} min" },
});

const locale = () => (lang === "en" ? "en" : "zh-CN");
const decimal = (value, digits) => new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);

// Seconds as "42 秒" / "42 s" (a tenth under a minute when not whole), "5 分 35 秒", "1 小时 5 分".
// A status line and an error line whose messages are functions of the language: `say` shows one
// (null clears it, and hides the error line), `sayAgain` words both anew after a language switch.
export function messageLines(status, error) {
  const messages = { status: null, error: null };
  function say(which, message) {
    messages[which] = message;
    const target = which === "status" ? status : error;
    target.textContent = message ? message() : "";
    if (which === "error") error.hidden = !message;
  }
  const sayAgain = () => {
    say("status", messages.status);
    say("error", messages.error);
  };
  return { say, sayAgain };
}

export function duration(seconds) {
  if (seconds < 60) return t("time.s", { n: decimal(seconds, 1) });
  const total = Math.round(seconds);
  if (total < 3600) {
    const [m, s] = [Math.floor(total / 60), total % 60];
    return s ? t("time.min_s", { m, s }) : t("time.min", { m });
  }
  return t("time.h_min", { h: Math.floor(total / 3600), m: Math.round((total % 3600) / 60) });
}

// --- reasons the server gives as {code, params} (README, "Reason codes") ------------------------
add({
  zh: {
    "reason.longest_wait": "最长等待 {wait_s}（阈值 {threshold_s}）",
    "reason.predicted_wait": "按 {agents} 名坐席预计等待 {wait_s}（阈值 {threshold_s}）",
    "reason.no_agents": "{waiting} 通来电排队，没有坐席在线",
    "reason.overloaded": "超负荷：话务量 {erlangs} 爱尔兰，只有 {agents} 名坐席（排队只增不减）",
    "reason.arrivals": "近 15 分钟来电量为平时的 {ratio} 倍（阈值 {threshold} 倍）",
    "reason.connection_rate": "近一小时接通率 {rate}（阈值 {threshold_rate}）",
    "reason.release_over": "压力值 {score} 未低于释放阈值 {threshold}",
    "reason.release_under": "压力值 {score} 低于释放阈值 {threshold} 已 {under_s}，需持续 {needed_s}",
    "reason.release_ready": "压力值 {score} 低于释放阈值 {threshold} 已 {under_s}（持续 {needed_s} 即可释放）",
    "reason.own_capacity": "本市坐席每小时可接 {capacity_per_hour} 通，每小时来电 {demand_per_hour} 通",
    "reason.no_reading": "尚无压力读数",
    "reason.surge_draining": "多援一正在收尾", "reason.surge_ended": "多援一已结束",
    "reason.under_pressure": "本市压力过高",
    "reason.host_of_surge": "正在求援（#{surge_id}）",
    "reason.helping_surge": "正在援助（#{surge_id}）",
    "reason.rollback": "回滚到第 {to_version} 版",
  },
  en: {
    "reason.longest_wait": "longest wait {wait_s} (threshold {threshold_s})",
    "reason.predicted_wait": "predicted wait {wait_s} with {agents} agents (threshold {threshold_s})",
    "reason.no_agents": "no agent logged in for the {waiting} calls waiting",
    "reason.overloaded": "overloaded: {erlangs} Erlangs offered to {agents} agents (the queue can only grow)",
    "reason.arrivals": "arrivals {ratio}x normal over the last 15 min (threshold {threshold}x)",
    "reason.connection_rate": "connection rate {rate} in the last hour (threshold {threshold_rate})",
    "reason.release_over": "pressure {score} at or over the release threshold {threshold}",
    "reason.release_under": "pressure {score} under the release threshold {threshold} for {under_s} of the {needed_s} needed",
    "reason.release_ready": "pressure {score} under the release threshold {threshold} for {under_s} (release after {needed_s})",
    "reason.own_capacity": "own capacity {capacity_per_hour} calls/h for {demand_per_hour} calls/h arriving",
    "reason.no_reading": "no pressure reading yet",
    "reason.surge_draining": "the surge is draining", "reason.surge_ended": "the surge has ended",
    "reason.under_pressure": "under pressure itself",
    "reason.host_of_surge": "host of surge {surge_id}",
    "reason.helping_surge": "helping surge {surge_id}",
    "reason.rollback": "rollback to version {to_version}",
  },
});

// A figure of a reason by its name: seconds (`*_s`) as durations, rates (`*rate`) as percentages.
function reasonParam(name, value) {
  if (typeof value !== "number") return String(value);
  if (name.endsWith("_s")) return duration(value);
  if (name.endsWith("rate")) return new Intl.NumberFormat(locale(), { style: "percent" }).format(value);
  return decimal(value, 2);
}

// A server reason {code, params} in the console's language; `fallback` (the server's English
// sentence) for a code this console does not know yet.
export function reasonText({ code, params }, fallback = code) {
  const key = `reason.${code}`;
  if (!(key in strings[lang])) return fallback;
  const values = Object.fromEntries(Object.entries(params).map(([name, value]) => [name, reasonParam(name, value)]));
  return t(key, values);
}
