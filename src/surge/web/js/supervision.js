// Supervision in the consoles: the coordinator's live list of agents (filter by city and state,
// force a logout, release the connected call of an agent who is gone), the notice box of a running
// surge, and the agent console's notices (newest first).
import { CITY_NAMES, cityName, el, get, post } from "./api.js";
import { add, language, onLanguage, t } from "./i18n.js";

const STATES = ["available", "offered", "busy", "wrap_up", "break", "lost", "offline"];
const SHOWN_ROWS = 300; // rows drawn at once; the filters narrow a province-wide list
const KEPT_NOTICES = 50;

add({
  zh: {
    "sup.agents": "坐席监控", "sup.city": "城市（含援助坐席）", "sup.state": "状态", "sup.all": "全部",
    "sup.count": "{n} 名坐席", "sup.more": "另有 {n} 名未显示，请缩小筛选范围",
    "sup.col_agent": "坐席", "sup.col_city": "所属城市", "sup.col_state": "状态", "sup.col_since": "起始",
    "sup.col_call": "当前来电", "sup.col_serving": "服务城市", "sup.col_scripts": "口径版本",
    "sup.col_instance": "实例", "sup.col_actions": "操作", "sup.none": "没有符合条件的坐席",
    "sup.available": "空闲", "sup.offered": "振铃中", "sup.busy": "通话中", "sup.wrap_up": "话后整理", "sup.break": "小休",
    "sup.lost": "失联", "sup.offline": "离线",
    "sup.logout": "强制签出", "sup.logout_named": "强制签出 {name}", "sup.logged_out": "{name} 已被签出",
    "sup.release": "释放来电", "sup.release_named": "释放 {name} 的来电 #{id}",
    "sup.release_reason": "释放来电 #{id} 的原因（记入审计日志）", "sup.release_confirm": "确认释放",
    "sup.cancel": "取消", "sup.released": "来电 #{id} 已释放", "sup.failed": "操作失败：{message}",
    "sup.notice": "向本次多援一全体坐席发布通知", "sup.notice_send": "发送通知",
    "sup.notice_sent": "通知已发送（#{id}）", "sup.notice_empty": "请输入通知内容",
    "sup.notices": "通知", "sup.no_notices": "暂无通知", "sup.from_surge": "多援一 #{id}",
    "sup.from_city": "{city}", "sup.by": "{who} 发布",
  },
  en: {
    "sup.agents": "Agents", "sup.city": "City (with helpers serving it)", "sup.state": "State", "sup.all": "All",
    "sup.count": "{n} agents", "sup.more": "{n} more not shown: narrow the filters",
    "sup.col_agent": "Agent", "sup.col_city": "Home city", "sup.col_state": "State", "sup.col_since": "Since",
    "sup.col_call": "Call in hand", "sup.col_serving": "Serving", "sup.col_scripts": "Scripts",
    "sup.col_instance": "Instance", "sup.col_actions": "Actions", "sup.none": "No agent matches",
    "sup.available": "Available", "sup.offered": "Ringing", "sup.busy": "On a call", "sup.wrap_up": "Wrap-up", "sup.break": "On break",
    "sup.lost": "Lost", "sup.offline": "Offline",
    "sup.logout": "Log out", "sup.logout_named": "Log out {name}", "sup.logged_out": "{name} was logged out",
    "sup.release": "Release call", "sup.release_named": "Release call #{id} of {name}",
    "sup.release_reason": "Why call #{id} is released (kept in the audit log)", "sup.release_confirm": "Release it",
    "sup.cancel": "Cancel", "sup.released": "Call #{id} released", "sup.failed": "Failed: {message}",
    "sup.notice": "Notice to everyone serving this surge", "sup.notice_send": "Send notice",
    "sup.notice_sent": "Notice sent (#{id})", "sup.notice_empty": "Write the notice first",
    "sup.notices": "Notices", "sup.no_notices": "No notices", "sup.from_surge": "surge #{id}",
    "sup.from_city": "{city}", "sup.by": "from {who}",
  },
});

const lang = () => language();
const locale = () => (lang() === "en" ? "en-GB" : "zh-CN");
const clock = (at) => new Date(at).toLocaleTimeString(locale(), { hour12: false });
const describe = (error) => (error.code && error.code !== "network" ? `${error.message} (${error.code})` : error.message);
const stateName = (state) => (t(`sup.${state}`) === `sup.${state}` ? state : t(`sup.${state}`));

// The coordinator's live list of agents: `refresh()` reads it again (the page polls it).
export function agentsPanel({ banner }) {
  const state = { rows: [], error: "", release: null, reading: 0 };
  const citySelect = el("select", { id: "agents-city" });
  const stateSelect = el("select", { id: "agents-state" });
  const count = el("span", { id: "agents-count", class: "pill", role: "status" });
  const table = el("div", { id: "agents-table", class: "table-wrap" });
  const error = el("p", { id: "agents-error", class: "error", role: "alert" });
  const reasonLabel = el("label", { for: "release-reason", id: "release-reason-label" });
  const reason = el("input", { id: "release-reason", type: "text", maxlength: 500 });
  const confirm = el("button", { type: "button", id: "release-confirm", class: "danger" });
  const cancel = el("button", { type: "button", id: "release-cancel" });
  const releaseBox = el("div", { id: "release-box", class: "confirm", role: "group", "aria-labelledby": "release-reason-label", hidden: true },
    reasonLabel, reason, el("div", { class: "actions" }, confirm, cancel));
  const title = el("h2", { id: "agents-title" });
  const cityLabel = el("label", { for: "agents-city" });
  const stateLabel = el("label", { for: "agents-state" });
  const root = el("section", { class: "card", id: "agents", "aria-labelledby": "agents-title" },
    title,
    el("div", { class: "toolbar" }, cityLabel, citySelect, stateLabel, stateSelect, count),
    error, releaseBox, table);

  function options() {
    const chosenCity = citySelect.value;
    const chosenState = stateSelect.value;
    citySelect.replaceChildren(el("option", { value: "" }, t("sup.all")),
      ...Object.keys(CITY_NAMES).map((code) => el("option", { value: code }, cityName(code, lang()))));
    stateSelect.replaceChildren(el("option", { value: "" }, t("sup.all")),
      ...STATES.map((name) => el("option", { value: name }, stateName(name))));
    citySelect.value = chosenCity;
    stateSelect.value = chosenState;
  }

  async function refresh() {
    const seq = ++state.reading;
    const code = citySelect.value;
    try {
      const rows = await get(code ? `/agents?city=${code}` : "/agents");
      if (seq !== state.reading) return; // a newer read (another filter) took over
      [state.rows, state.error] = [rows, ""];
    } catch (failure) {
      if (seq !== state.reading) return;
      state.error = describe(failure);
    }
    render();
  }

  async function act(path, body, done) {
    error.textContent = "";
    try {
      await post(path, body);
      banner(done, "ok");
    } catch (failure) {
      error.textContent = t("sup.failed", { message: describe(failure) });
      error.dataset.code = failure.code || "";
    }
    await refresh();
  }

  function openRelease(agent) {
    state.release = agent;
    reasonLabel.textContent = t("sup.release_reason", { id: agent.call_id });
    reason.value = "";
    releaseBox.hidden = false;
    reason.focus();
  }

  const closeRelease = () => {
    state.release = null;
    releaseBox.hidden = true;
  };

  confirm.addEventListener("click", () => {
    const agent = state.release;
    if (!agent) return;
    closeRelease();
    act(`/calls/${agent.call_id}/release`, { reason: reason.value.trim() }, () => t("sup.released", { id: agent.call_id }));
  });
  cancel.addEventListener("click", closeRelease);
  releaseBox.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeRelease();
  });
  citySelect.addEventListener("change", refresh);
  stateSelect.addEventListener("change", render);

  function row(agent) {
    const gone = agent.state === "lost" || agent.state === "offline";
    const logout = agent.state === "offline" ? null : el("button", {
      type: "button", id: `agent-${agent.id}-logout`, "aria-label": t("sup.logout_named", { name: agent.name }),
    }, t("sup.logout"));
    logout?.addEventListener("click", () => act(`/agents/${agent.id}/logout`, {}, () => t("sup.logged_out", { name: agent.name })));
    const release = gone && agent.call_id ? el("button", {
      type: "button", class: "danger", id: `agent-${agent.id}-release`,
      "aria-label": t("sup.release_named", { name: agent.name, id: agent.call_id }),
    }, t("sup.release")) : null;
    release?.addEventListener("click", () => openRelease(agent));
    return el("tr", { id: `agent-${agent.id}`, dataset: { state: agent.state, city: agent.city } },
      el("th", { scope: "row" }, agent.name),
      el("td", {}, cityName(agent.city, lang())),
      el("td", {}, el("span", { class: `pill ${gone ? "warn" : agent.state === "available" ? "ok" : ""}`, dataset: { field: "state" } }, stateName(agent.state))),
      el("td", {}, agent.since ? clock(agent.since) : "—"),
      el("td", { class: "num", dataset: { field: "call" } }, agent.call_id ?? "—"),
      el("td", {}, agent.serving_host ? cityName(agent.serving_host, lang()) : "—"),
      el("td", { class: "num" }, agent.scripts_version ?? "—"),
      el("td", {}, agent.instance ?? "—"),
      el("td", { class: "actions" }, ...[logout, release].filter(Boolean)));
  }

  function render() {
    title.textContent = t("sup.agents");
    cityLabel.textContent = t("sup.city");
    stateLabel.textContent = t("sup.state");
    confirm.textContent = t("sup.release_confirm");
    cancel.textContent = t("sup.cancel");
    if (state.release) reasonLabel.textContent = t("sup.release_reason", { id: state.release.call_id });
    options();
    error.textContent = state.error ? t("sup.failed", { message: state.error }) : error.textContent;
    const wanted = stateSelect.value;
    const rows = state.rows.filter((agent) => !wanted || agent.state === wanted);
    count.textContent = t("sup.count", { n: rows.length });
    if (!rows.length) {
      table.replaceChildren(el("p", { class: "muted" }, t("sup.none")));
      return;
    }
    const shown = rows.slice(0, SHOWN_ROWS);
    table.replaceChildren(
      el("table", { class: "agents-table" },
        el("caption", { class: "visually-hidden" }, t("sup.agents")),
        el("thead", {}, el("tr", {}, ["agent", "city", "state", "since", "call", "serving", "scripts", "instance", "actions"]
          .map((key) => el("th", { scope: "col" }, t(`sup.col_${key}`))))),
        el("tbody", {}, shown.map(row))),
      rows.length > shown.length ? el("p", { class: "muted" }, t("sup.more", { n: rows.length - shown.length })) : "");
  }

  render();
  return { root, refresh, render };
}

// The notice box of a running surge's card.
export function noticeBox(surgeId, { banner }) {
  const id = `surge-${surgeId}-notice`;
  const label = el("label", { for: id });
  const text = el("textarea", { id, rows: 2, maxlength: 2000 });
  const send = el("button", { type: "button", id: `${id}-send`, class: "primary" });
  const status = el("p", { id: `${id}-error`, class: "error", role: "alert" });
  const root = el("div", { class: "notice-box" }, label, text, el("div", { class: "actions" }, send), status);
  send.addEventListener("click", async () => {
    status.textContent = "";
    if (!text.value.trim()) {
      status.textContent = t("sup.notice_empty");
      return;
    }
    send.disabled = true;
    try {
      const sent = await post(`/surges/${surgeId}/notices`, { text: text.value.trim() });
      text.value = "";
      banner(() => t("sup.notice_sent", { id: sent.id }), "ok");
    } catch (failure) {
      status.textContent = t("sup.failed", { message: describe(failure) });
      status.dataset.code = failure.code || "";
    } finally {
      send.disabled = false;
    }
  });
  function render() {
    label.textContent = t("sup.notice");
    send.textContent = t("sup.notice_send");
  }
  render();
  return { root, render };
}

// The agent console's notices, newest first; a notice received twice (sent as it connected) once.
export function noticeList() {
  const notices = new Map();
  const title = el("h2", { id: "notices-title" });
  const list = el("ul", { id: "notice-list", class: "notices" });
  const root = el("section", { id: "notices", class: "card", "aria-labelledby": "notices-title", "aria-live": "polite" }, title, list);

  function render() {
    title.textContent = t("sup.notices");
    const newest = [...notices.values()].sort((a, b) => b.id - a.id);
    if (!newest.length) {
      list.replaceChildren(el("li", { class: "muted" }, t("sup.no_notices")));
      return;
    }
    list.replaceChildren(...newest.map((notice) => el("li", { dataset: { id: notice.id } },
      el("div", { class: "notice-meta muted" },
        el("time", { datetime: notice.at }, clock(notice.at)), " · ",
        notice.surge_id ? t("sup.from_surge", { id: notice.surge_id }) : t("sup.from_city", { city: cityName(notice.city, lang()) }),
        " · ", t("sup.by", { who: notice.from })),
      el("p", { class: "notice-text" }, notice.text))));
  }

  function addNotice(frame) {
    notices.set(frame.id, frame);
    for (const old of [...notices.keys()].sort((a, b) => a - b).slice(0, Math.max(0, notices.size - KEPT_NOTICES))) notices.delete(old);
    render();
  }

  const stop = onLanguage(render);
  render();
  return { root, add: addNotice, render, stop };
}
