// The coordinator's dashboard: every city's pressure, starting a surge from the proposed waves,
// the live surges (waves, helpers, the host's queue, script adoption), and ending them; the hot
// issues of the last hour (hotspots.js).
import { CITY_NAMES, cityName, el, get, post } from "./api.js";
import { chart } from "./chart.js";
import { hotspotsPanel } from "./hotspots.js";
import { add, duration, language, onLanguage, reasonText, t, translate } from "./i18n.js";
import { agentsPanel, noticeBox } from "./supervision.js";

const POLL_MS = 3000;
const CODES = Object.keys(CITY_NAMES);
const SEVERE_SCORE = 6; // an over city scoring this much is shown as severe (p3)
const FORECAST_DELAY_MS = 400; // the wave editor asks for a what-if once the edits pause

add({
  zh: {
    "coord.title": "省级统筹", "coord.updated": "更新于 {time}", "coord.refresh_failed": "刷新失败：{message}",
    "coord.board": "全省话务压力", "coord.elected": "当选求援城市", "coord.none_elected": "目前没有城市超过压力阈值",
    "coord.elected_badge": "当选", "coord.over": "超阈值", "coord.waiting": "排队", "coord.longest": "最长等待",
    "coord.agents": "坐席 空闲/忙", "coord.connection": "接通率", "coord.score": "压力值 {score}",
    "coord.level0": "平稳", "coord.level1": "关注", "coord.level2": "承压", "coord.level3": "严重",
    "coord.start_for": "为{city}发起多援一",
    "coord.launch": "发起多援一", "coord.host": "求援城市", "coord.pick": "请选择", "coord.propose": "重新获取建议方案",
    "coord.loading": "正在获取建议方案…", "coord.proposed": "建议方案已载入，可按需调整",
    "coord.short": "求援城市约缺 {n} 名坐席", "coord.wave": "第 {n} 波", "coord.seats": "每市席位",
    "coord.helpers": "援助城市", "coord.spare": "可抽调 {n}", "coord.add_wave": "添加一波", "coord.remove_wave": "删除第 {n} 波",
    "coord.overflow": "溢出等待（秒）", "coord.overflow_hint": "来电排队超过此时长后才分配给援助坐席",
    "coord.shared": "允许援助城市同时支援其他多援一", "coord.callbacks": "放弃来电自动回拨", "coord.callbacks_on": "自动回拨",
    "coord.reason": "启动原因（记入审计日志）",
    "coord.submit": "启动多援一", "coord.no_helpers": "请至少选择一个援助城市", "coord.pick_host": "请先选择求援城市",
    "coord.started": "已为{city}启动多援一（#{id}）", "coord.host_busy": "{city}已有进行中的多援一（#{id}），不能再发起；可在下方为它启动下一波。", "coord.left_out": "未纳入建议的城市",
    "coord.live": "进行中的多援一", "coord.no_surges": "目前没有进行中的多援一",
    "coord.surge_title": "{city}多援一 #{id}", "coord.host_waiting": "求援城市排队 {n}",
    "coord.since": "{time} 由 {who} 启动", "coord.overflow_is": "溢出等待 {wait}",
    "coord.col_wave": "波次", "coord.col_city": "援助城市", "coord.col_seats": "席位", "coord.col_in_use": "在用",
    "coord.col_answered": "已接听", "coord.col_state": "状态", "coord.active_at": "已启动 {time}", "coord.pending": "待启动",
    "coord.total": "合计", "coord.activate": "启动第 {n} 波", "coord.activated": "{city}多援一第 {n} 波已启动",
    "coord.end": "结束多援一", "coord.confirm_end": "确认结束{city}多援一？援助坐席尚未接听的来电立即撤回、回到排队原位，手中的来电将正常完成。",
    "coord.status_active": "进行中", "coord.status_draining": "收尾中",
    "coord.draining_note": "不再向援助城市分配来电；援助坐席手中还有 {n} 通来电，全部完成后自动结束。",
    "coord.ending": "{city}多援一正在收尾：援助坐席完成手中来电后自动结束",
    "coord.end_reason": "结束原因（可选）", "coord.confirm": "确认结束", "coord.cancel": "取消",
    "coord.ended": "{city}多援一已结束", "coord.queue_chart": "{city}近一小时排队情况",
    "coord.series_waiting": "排队来电", "coord.series_agents": "在线坐席", "coord.no_history": "暂无采样数据",
    "coord.adoption": "{city}答复口径版本", "coord.adoption_summary": "当前第 {v} 版 · {n} 名坐席在线服务",
    "coord.version": "第 {v} 版", "coord.unacked": "未确认", "coord.agents_n": "{n} 人",
    "coord.behind": "版本落后的坐席", "coord.all_current": "所有在线坐席均已使用最新版本",
    "coord.col_agent": "坐席", "coord.col_home": "所属城市", "coord.col_version": "当前版本", "coord.more": "另有 {n} 人",
    "coord.failed": "操作失败：{message}",
    "coord.capacity": "每时能力/来话", "coord.shortfall": "每时缺口",
    "coord.release": "建议结束：求援城市已可自行应对",
    "coord.province": "全省合计", "coord.province_capacity": "每时能力", "coord.province_demand": "每时来话",
    "coord.province_shortfall": "每时缺口", "coord.province_waiting": "排队", "coord.province_over": "超阈值城市",
    "coord.route_ok": "全省尚有余力：调度援助可以解决", "coord.recruit": "全省能力已不足：调度无法弥补，需增派人员或分流来话",
    "coord.forecast": "预测：服务水平 {sl}，放弃率 {ab}，平均应答 {asa}（坐席合计 {n}）",
    "coord.forecast_c": "预测：服务水平 {sl}，平均应答 {asa}（坐席合计 {n}；耐心未知，按 Erlang C 不计放弃）",
    "coord.forecast_loading": "正在预测…", "coord.forecast_failed": "无法预测：{message}",
    "coord.sizing": "按目标（{target} 的来电在 {within} 秒内接听）需坐席 {n} 名，其中援助席位 {seats} 个",
    "coord.sizing_inputs": "依据：来话 {arrivals}/时（{a_src}）· 平均处理 {aht} 秒（{h_src}）· 耐心 {patience}（{p_src}）· 本市坐席 {own}（{o_src}）",
    "coord.src_live": "实时", "coord.src_given": "给定", "coord.src_default": "默认值", "coord.src_unknown": "未知",
    "coord.unbounded": "无限（排队只增不减）",
  },
  en: {
    "coord.title": "Coordinator", "coord.updated": "Updated {time}", "coord.refresh_failed": "Refresh failed: {message}",
    "coord.board": "Pressure across the province", "coord.elected": "Elected city", "coord.none_elected": "No city is over its pressure thresholds",
    "coord.elected_badge": "Elected", "coord.over": "Over", "coord.waiting": "Waiting", "coord.longest": "Longest wait",
    "coord.agents": "Free / busy", "coord.connection": "Conn. rate", "coord.score": "Score {score}",
    "coord.level0": "Calm", "coord.level1": "Watch", "coord.level2": "Under pressure", "coord.level3": "Severe",
    "coord.start_for": "Start a surge for {city}",
    "coord.launch": "Start a surge", "coord.host": "Host city", "coord.pick": "Choose", "coord.propose": "Propose again",
    "coord.loading": "Loading the proposal…", "coord.proposed": "Proposal loaded; adjust it as needed",
    "coord.short": "The host is about {n} agents short", "coord.wave": "Wave {n}", "coord.seats": "Seats per city",
    "coord.helpers": "Helper cities", "coord.spare": "{n} spare", "coord.add_wave": "Add a wave", "coord.remove_wave": "Remove wave {n}",
    "coord.overflow": "Overflow after (s)", "coord.overflow_hint": "Calls wait this long before helpers are offered them",
    "coord.shared": "Let helpers also serve another surge", "coord.callbacks": "Call back the callers who give up",
    "coord.callbacks_on": "callbacks", "coord.reason": "Reason (kept in the audit log)",
    "coord.submit": "Start the surge", "coord.no_helpers": "Choose at least one helper city", "coord.pick_host": "Choose the host city first",
    "coord.started": "Surge #{id} for {city} started", "coord.host_busy": "{city} already has an active surge (#{id}); start its next wave below instead.", "coord.left_out": "Cities left out of the proposal",
    "coord.live": "Active surges", "coord.no_surges": "No surge is active",
    "coord.surge_title": "Surge #{id} for {city}", "coord.host_waiting": "{n} waiting at the host",
    "coord.since": "started {time} by {who}", "coord.overflow_is": "overflow after {wait}",
    "coord.col_wave": "Wave", "coord.col_city": "Helper city", "coord.col_seats": "Seats", "coord.col_in_use": "In use",
    "coord.col_answered": "Answered", "coord.col_state": "State", "coord.active_at": "active since {time}", "coord.pending": "not yet active",
    "coord.total": "Total", "coord.activate": "Activate wave {n}", "coord.activated": "Wave {n} of the surge for {city} is active",
    "coord.end": "End the surge", "coord.confirm_end": "End the surge for {city}? Offers helpers have not yet accepted are withdrawn at once (the calls keep their place in the queue); calls in hand finish normally.",
    "coord.status_active": "Active", "coord.status_draining": "Draining",
    "coord.draining_note": "No new calls go to helpers; they are finishing {n} calls in hand, and the surge ends by itself when they are done.",
    "coord.ending": "The surge for {city} is draining: it ends once helpers finish the calls in hand",
    "coord.end_reason": "Reason for ending (optional)", "coord.confirm": "Yes, end it", "coord.cancel": "Cancel",
    "coord.ended": "The surge for {city} has ended", "coord.queue_chart": "{city}: the queue over the last hour",
    "coord.series_waiting": "Calls waiting", "coord.series_agents": "Agents logged in", "coord.no_history": "No samples yet",
    "coord.adoption": "{city}: answer script versions", "coord.adoption_summary": "Version {v} is current · {n} agents serving",
    "coord.version": "v{v}", "coord.unacked": "not acknowledged", "coord.agents_n": "{n}",
    "coord.behind": "Agents behind", "coord.all_current": "Every connected agent has the current version",
    "coord.col_agent": "Agent", "coord.col_home": "Home city", "coord.col_version": "Version", "coord.more": "and {n} more",
    "coord.failed": "Failed: {message}",
    "coord.capacity": "Capacity / demand per h", "coord.shortfall": "Shortfall per h",
    "coord.release": "Release suggested: the host can cope on its own",
    "coord.province": "Province", "coord.province_capacity": "Capacity per h", "coord.province_demand": "Demand per h",
    "coord.province_shortfall": "Shortfall per h", "coord.province_waiting": "Waiting", "coord.province_over": "Cities over",
    "coord.route_ok": "The province has capacity to spare: routing help can cover it", "coord.recruit": "The province is short of capacity: routing cannot cover it, recruit or deflect",
    "coord.forecast": "Predicted: service level {sl}, abandoned {ab}, ASA {asa} ({n} agents in all)",
    "coord.forecast_c": "Predicted: service level {sl}, ASA {asa} ({n} agents in all; patience unknown, Erlang C, no abandonment)",
    "coord.forecast_loading": "Predicting…", "coord.forecast_failed": "No prediction: {message}",
    "coord.sizing": "For the target ({target} answered within {within} s) the host needs {n} agents: {seats} helper seats",
    "coord.sizing_inputs": "From: {arrivals} calls/h ({a_src}) · AHT {aht} s ({h_src}) · patience {patience} ({p_src}) · own agents {own} ({o_src})",
    "coord.src_live": "live", "coord.src_given": "given", "coord.src_default": "default", "coord.src_unknown": "unknown",
    "coord.unbounded": "unbounded (the queue only grows)",
  },
});

function loadStyles() {
  if (document.querySelector('link[data-page="coordinator"]')) return;
  const href = new URL("../css/coordinator.css", import.meta.url).href;
  document.head.append(el("link", { rel: "stylesheet", href, dataset: { page: "coordinator" } }));
}

// --- formatting -----------------------------------------------------------------------------------
const lang = () => language();
const city = (code) => cityName(code, lang());
const locale = () => (lang() === "en" ? "en-GB" : "zh-CN");
const clock = (at) => new Date(at).toLocaleTimeString(locale(), { hour12: false });
const hhmm = (at) => new Date(at).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", hour12: false });


// Replace a node's children, skipping the absent ones (replaceChildren would print "null").
function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
}

const percent = (rate) => (rate === null || rate === undefined ? "—" : `${Math.round(rate * 100)}%`);
const percent1 = (rate) => (rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`);
const describe = (error) => (error.code && error.code !== "network" ? `${error.message} (${error.code})` : error.message);

// Pressure level for the tile colour: calm, a signal at threshold, over, over and strong.
function level(reading, elected) {
  if (reading.over) return reading.score >= SEVERE_SCORE || reading.code === elected ? 3 : 2;
  return reading.score >= 1 ? 1 : 0;
}

export function mount(view, { banner }) {
  loadStyles();
  const state = {
    closed: false, polling: false, board: null, surges: [], cards: new Map(),
    hostTouched: false, proposalSeq: 0, surgesSeq: 0, draft: null, submitting: false,
    forecastSeq: 0, forecastTimer: null,
  };

  // --- the page's frame -------------------------------------------------------------------------
  const updated = el("span", { id: "board-updated", class: "pill" });
  const refreshError = el("p", { id: "refresh-error", class: "error", role: "alert" });
  const grid = el("div", { id: "board", class: "grid13" });
  const provinceBox = el("div", { id: "province", class: "province", "aria-live": "polite" });
  const electedText = el("div", { id: "elected" });
  const startFor = el("button", { type: "button", id: "start-for-elected", class: "primary", hidden: true });
  const host = el("select", { id: "surge-host", name: "host" });
  const propose = el("button", { type: "button", id: "surge-propose", "data-i18n": "coord.propose" });
  const proposalStatus = el("span", { id: "proposal-status", role: "status", class: "muted" });
  const editor = el("div", { id: "wave-editor" });
  const addWave = el("button", { type: "button", id: "add-wave", "data-i18n": "coord.add_wave" });
  const overflow = el("input", { id: "surge-overflow", type: "number", min: 0, max: 3600, step: 1, value: 0, "aria-describedby": "overflow-hint" });
  const shared = el("input", { id: "surge-shared", type: "checkbox" });
  const callbacks = el("input", { id: "surge-callbacks", type: "checkbox" });
  const reason = el("input", { id: "surge-reason", type: "text", maxlength: 1000 });
  const leftOut = el("div", { id: "left-out" });
  const formError = el("p", { id: "surge-error", class: "error", role: "alert" });
  const hostBusy = el("p", { id: "surge-host-busy", class: "host-busy", role: "status", hidden: true });
  const submit = el("button", { type: "submit", id: "surge-submit", class: "primary", "data-i18n": "coord.submit", "aria-describedby": hostBusy.id });
  const form = el("form", { id: "surge-form", class: "surge-form", dataset: { state: "idle", host: "" }, novalidate: true },
    el("div", { class: "toolbar" },
      el("label", { for: "surge-host", "data-i18n": "coord.host" }), host, propose, proposalStatus),
    editor,
    el("div", { class: "toolbar" }, addWave),
    el("div", { class: "launch-options" },
      el("label", { for: "surge-overflow", "data-i18n": "coord.overflow" }), overflow,
      el("small", { id: "overflow-hint", class: "muted", "data-i18n": "coord.overflow_hint" }),
      el("label", { for: "surge-reason", "data-i18n": "coord.reason" }), reason,
      el("span", {}), el("label", { class: "check" }, shared, " ", el("span", { "data-i18n": "coord.shared" })),
      el("span", {}), el("label", { class: "check" }, callbacks, " ", el("span", { "data-i18n": "coord.callbacks" }))),
    leftOut, formError, hostBusy, submit);
  const surgesList = el("div", { id: "surges" });
  const agentsView = agentsPanel({ banner });
  const hotspots = hotspotsPanel({ banner });

  view.append(
    el("div", { class: "toolbar" }, el("h1", { "data-i18n": "coord.title" }), updated),
    refreshError,
    el("section", { class: "card", "aria-labelledby": "board-title" },
      el("h2", { id: "board-title", "data-i18n": "coord.board" }),
      el("div", { class: "elected-panel" }, electedText, startFor),
      provinceBox,
      grid),
    hotspots.root,
    el("section", { class: "card", "aria-labelledby": "launch-title" },
      el("h2", { id: "launch-title", "data-i18n": "coord.launch" }), form),
    el("section", { class: "card", "aria-labelledby": "live-title" },
      el("h2", { id: "live-title", "data-i18n": "coord.live" }), surgesList),
    agentsView.root,
  );

  // --- 1. the pressure board -------------------------------------------------------------------
  async function refreshBoard() {
    state.board = await get("/pressure");
    renderBoard();
    // Until the coordinator picks a host, propose for the elected city (unless it already hosts).
    const elected = state.board.elected;
    if (elected && !hosting(elected) && !state.hostTouched && host.value !== elected && !state.submitting) {
      chooseHost(elected, false);
    }
  }

  function renderBoard() {
    const board = state.board;
    if (!board) return;
    updated.textContent = t("coord.updated", { time: clock(board.at) });
    const readings = new Map(board.cities.map((reading) => [reading.code, reading]));
    fill(grid, ...CODES.filter((code) => readings.has(code)).map((code) => tile(readings.get(code), board.elected)));
    renderProvince(board.province);
    const elected = board.elected ? readings.get(board.elected) : null;
    if (elected) {
      fill(electedText,
        el("h3", {}, t("coord.elected"), " ", el("strong", { id: "elected-city", dataset: { code: elected.code } }, city(elected.code)),
          " ", el("span", { class: "pill bad" }, t("coord.score", { score: elected.score.toFixed(1) }))),
        reasonList(elected));
      startFor.textContent = t("coord.start_for", { city: city(elected.code) });
      startFor.dataset.code = elected.code;
      startFor.hidden = hosting(elected.code);
    } else {
      fill(electedText, el("p", { class: "muted" }, t("coord.none_elected")));
      startFor.hidden = true;
    }
  }

  const hosting = (code) => state.surges.some((surge) => surge.host_city === code);

  // The province's totals: whether re-routing can still cover the demand ("recruit or deflect").
  function renderProvince(totals) {
    if (!totals) return fill(provinceBox);
    const short = totals.shortfall_per_hour > 0;
    const figure = (key, field, value) => [el("dt", {}, t(key)), el("dd", { dataset: { field } }, value)];
    fill(provinceBox,
      el("h3", {}, t("coord.province")),
      el("dl", { class: "figures" },
        figure("coord.province_capacity", "capacity", Math.round(totals.capacity_per_hour)),
        figure("coord.province_demand", "demand", Math.round(totals.demand_per_hour)),
        figure("coord.province_shortfall", "shortfall", Math.round(totals.shortfall_per_hour)),
        figure("coord.province_waiting", "waiting", totals.waiting),
        figure("coord.province_over", "over", totals.cities_over)),
      el("p", { id: "province-verdict", class: `pill ${short ? "bad" : "ok"}`, dataset: { short: short ? "true" : "false" } },
        t(short ? "coord.recruit" : "coord.route_ok")));
    return undefined;
  }

  function tile(reading, elected) {
    const tier = level(reading, elected);
    const isElected = reading.code === elected;
    const name = `tile-${reading.code}-name`;
    return el("article", {
      id: `tile-${reading.code}`, class: `tile p${tier}${isElected ? " elected" : ""}`, "aria-labelledby": name,
      dataset: { code: reading.code, level: tier, elected: isElected ? "true" : "false" },
    },
    el("h3", { id: name }, city(reading.code),
      isElected ? el("span", { class: "pill bad" }, t("coord.elected_badge")) : null,
      reading.over && !isElected ? el("span", { class: "pill warn" }, t("coord.over")) : null),
    el("p", { class: "tile-level" }, `${t(`coord.level${tier}`)} · ${t("coord.score", { score: reading.score.toFixed(1) })}`),
    el("dl", { class: "figures" },
      el("dt", {}, t("coord.waiting")), el("dd", { dataset: { field: "waiting" } }, reading.waiting),
      el("dt", {}, t("coord.longest")), el("dd", { dataset: { field: "longest" } }, duration(reading.longest_wait_s)),
      el("dt", {}, t("coord.agents")), el("dd", { dataset: { field: "agents" } }, `${reading.agents_free} / ${reading.agents_busy}`),
      el("dt", {}, t("coord.connection")), el("dd", { dataset: { field: "connection" } }, percent(reading.connection_rate)),
      el("dt", {}, t("coord.capacity")),
      el("dd", { dataset: { field: "capacity" } }, `${Math.round(reading.capacity_per_hour)} / ${Math.round(reading.demand_per_hour)}`),
      el("dt", {}, t("coord.shortfall")), el("dd", { dataset: { field: "shortfall" } }, Math.round(reading.shortfall_per_hour))),
    reading.reasons.length ? reasonList(reading) : null);
  }

  // A reading's reasons in the console's language (from their codes; the words as a fallback).
  function reasonList(reading) {
    return el("ul", { class: "reasons" }, reading.reason_codes.map((code, index) =>
      el("li", { dataset: { code: code.code } }, reasonText(code, reading.reasons[index]))));
  }

  startFor.addEventListener("click", () => {
    chooseHost(startFor.dataset.code, true);
    host.focus();
  });

  // --- 2. starting a surge from the proposed waves -----------------------------------------------
  function renderHostOptions() {
    const value = host.value;
    fill(host, el("option", { value: "" }, t("coord.pick")), CODES.map((code) => el("option", { value: code }, city(code))));
    host.value = value;
  }

  function chooseHost(code, byHand) {
    if (byHand) state.hostTouched = true;
    host.value = code;
    renderHostBusy();
    loadProposal(code);
  }

  // A host has one surge at a time (the API answers 409): a host that has one cannot start another.
  function renderHostBusy() {
    const surge = state.surges.find((one) => one.host_city === host.value);
    hostBusy.textContent = surge ? t("coord.host_busy", { city: city(surge.host_city), id: surge.id }) : "";
    hostBusy.hidden = !surge;
    submit.disabled = state.submitting || !!surge;
    form.dataset.hostBusy = surge ? "true" : "false";
  }

  host.addEventListener("change", () => {
    state.hostTouched = true;
    renderHostBusy();
    if (host.value) loadProposal(host.value);
    else {
      state.proposalSeq++; // a proposal still loading is no longer wanted
      state.draft = null;
      setStatus("");
      form.dataset.host = "";
      form.dataset.state = "idle";
      renderEditor();
    }
  });
  // Once the coordinator edits the draft, the elected city no longer replaces it.
  editor.addEventListener("change", () => { state.hostTouched = true; });
  propose.addEventListener("click", () => {
    if (!host.value) return showFormError(t("coord.pick_host"));
    state.hostTouched = true;
    return loadProposal(host.value);
  });

  async function loadProposal(code) {
    const seq = ++state.proposalSeq;
    form.dataset.state = "loading";
    form.dataset.host = code;
    setStatus("coord.loading");
    showFormError("");
    let draft = { host: code, waves: [], offers: {}, unavailable: {}, short: null };
    try {
      const proposal = await get(`/surges/proposal?host=${encodeURIComponent(code)}`);
      draft = {
        host: code,
        waves: proposal.waves.map((wave) => ({ cities: new Set(wave.cities), seats: wave.seats_per_city })),
        offers: Object.fromEntries(proposal.waves.flatMap((wave) => wave.helpers).map((h) => [h.city, h])),
        unavailable: Object.fromEntries(Object.entries(proposal.unavailable)
          .map(([code, text]) => [code, { text, code: proposal.unavailable_codes[code] }])),
        short: proposal.agents_short,
      };
      if (seq === state.proposalSeq) setStatus("coord.proposed");
    } catch (error) {
      if (seq === state.proposalSeq) {
        setStatus("");
        showFormError(describe(error), error.code);
      }
    }
    if (seq !== state.proposalSeq || state.closed) return; // a newer choice took over
    if (!draft.waves.length) draft.waves.push({ cities: new Set(), seats: 1 });
    state.draft = draft;
    renderEditor();
    form.dataset.state = "ready";
    forecast();
  }

  function renderEditor() {
    const draft = state.draft;
    addWave.disabled = !draft;
    if (!draft) {
      fill(editor);
      fill(leftOut);
      return;
    }
    fill(editor,
      draft.short !== null ? el("p", { id: "agents-short" }, t("coord.short", { n: draft.short })) : null,
      el("div", { id: "what-if", "aria-live": "polite" }),
      draft.waves.map((wave, index) => waveFieldset(draft, wave, index + 1)));
    renderForecast();
    const out = Object.entries(draft.unavailable);
    fill(leftOut, out.length
      ? el("details", { class: "left-out" }, el("summary", {}, `${t("coord.left_out")} (${out.length})`),
        el("ul", {}, out.map(([code, why]) => el("li", { dataset: { city: code } }, `${city(code)}: `, leftOutReason(why)))))
      : null);
  }

  const leftOutReason = (why) => el("span", { class: "why", dataset: { code: why.code.code } }, reasonText(why.code, why.text));

  function waveFieldset(draft, wave, number) {
    const id = `wave-${number}`;
    const seats = el("input", { id: `${id}-seats`, type: "number", min: 1, max: 10000, step: 1, value: wave.seats, required: true });
    seats.addEventListener("input", () => {
      wave.seats = seats.valueAsNumber;
      forecastSoon();
    });
    const remove = el("button", { type: "button", class: "small", id: `${id}-remove` }, t("coord.remove_wave", { n: number }));
    remove.disabled = draft.waves.length === 1;
    remove.addEventListener("click", () => {
      draft.waves.splice(number - 1, 1);
      renderEditor();
      forecast();
      addWave.focus();
    });
    const boxes = CODES.filter((code) => code !== draft.host).map((code) => {
      const box = el("input", { type: "checkbox", id: `${id}-${code}`, value: code, checked: wave.cities.has(code) });
      box.addEventListener("change", () => {
        if (box.checked) {
          wave.cities.add(code);
          draft.waves.forEach((other, at) => { // a city helps in one wave only: move it here
            if (other === wave || !other.cities.delete(code)) return;
            const elsewhere = document.getElementById(`wave-${at + 1}-${code}`);
            if (elsewhere) elsewhere.checked = false;
          });
        } else {
          wave.cities.delete(code);
        }
        forecastSoon();
      });
      const offer = draft.offers[code];
      const why = draft.unavailable[code];
      return el("label", { class: `city-check${offer ? " proposed" : ""}${why ? " unavailable" : ""}`, for: box.id },
        box, " ", city(code),
        offer ? el("small", {}, ` ${t("coord.spare", { n: offer.spare })}`) : null,
        why ? el("small", {}, " ", leftOutReason(why)) : null);
    });
    return el("fieldset", { class: "wave", id, dataset: { wave: number } },
      el("legend", {}, t("coord.wave", { n: number })),
      el("div", { class: "wave-head" }, el("label", { for: seats.id }, t("coord.seats")), seats, remove),
      el("p", { class: "wave-forecast", id: `${id}-forecast` }),
      el("div", { class: "wave-cities", role: "group", "aria-label": `${t("coord.wave", { n: number })} ${t("coord.helpers")}` }, boxes));
  }

  addWave.addEventListener("click", () => {
    if (!state.draft) return;
    state.draft.waves.push({ cities: new Set(), seats: 1 });
    renderEditor();
    forecast();
    document.getElementById(`wave-${state.draft.waves.length}-seats`)?.focus();
  });

  // --- the what-if: predicted service as each wave's seats come in (waves add up) ----------------
  const seatsOf = (wave) => (Number.isFinite(wave.seats) && wave.seats > 0 ? Math.floor(wave.seats) : 0) * wave.cities.size;

  function cumulativeSeats(draft) {
    let total = 0;
    return draft.waves.map((wave) => (total += seatsOf(wave)));
  }

  function forecastSoon() {
    clearTimeout(state.forecastTimer);
    state.forecastTimer = setTimeout(forecast, FORECAST_DELAY_MS);
  }

  async function forecast() {
    clearTimeout(state.forecastTimer);
    const draft = state.draft;
    if (!draft || state.closed) return;
    const seq = ++state.forecastSeq;
    const seats = cumulativeSeats(draft);
    draft.forecast = { loading: true, seats };
    renderForecast();
    let outcome;
    try {
      outcome = { result: await post("/surges/what-if", { host_city: draft.host, helper_seats: seats }), seats };
    } catch (error) {
      outcome = { error: describe(error), code: error.code, seats };
    }
    if (seq !== state.forecastSeq || draft !== state.draft || state.closed) return; // newer edits won
    draft.forecast = outcome;
    renderForecast();
  }

  function renderForecast() {
    const draft = state.draft;
    const box = document.getElementById("what-if");
    if (!draft || !box) return;
    const outcome = draft.forecast;
    const waves = draft.waves.map((_, index) => document.getElementById(`wave-${index + 1}-forecast`));
    if (!outcome || outcome.loading) {
      box.dataset.state = "loading";
      fill(box, el("p", { class: "muted" }, t("coord.forecast_loading")));
      waves.forEach((node) => node && fill(node));
      return;
    }
    if (outcome.error) {
      box.dataset.state = "failed";
      fill(box, el("p", { class: "error", dataset: { code: outcome.code || "" } }, t("coord.forecast_failed", { message: outcome.error })));
      waves.forEach((node) => node && fill(node));
      return;
    }
    const result = outcome.result;
    const inputs = result.inputs;
    const source = (input) => t(`coord.src_${input.source}`);
    const number = (value, digits = 0) => (value === null ? "—" : Number(value).toFixed(digits));
    box.dataset.state = "ready";
    box.dataset.method = result.method;
    fill(box,
      el("p", { id: "what-if-sizing", dataset: { agents: result.agents_needed, seats: result.helper_seats_needed } },
        t("coord.sizing", {
          target: percent(inputs.service_level), within: inputs.within_s,
          n: result.agents_needed, seats: result.helper_seats_needed,
        })),
      el("p", { id: "what-if-inputs", class: "muted" }, t("coord.sizing_inputs", {
        arrivals: number(inputs.arrivals_per_hour.value), a_src: source(inputs.arrivals_per_hour),
        aht: number(inputs.aht_s.value), h_src: source(inputs.aht_s),
        patience: inputs.patience_s.value === null ? "—" : duration(Math.round(inputs.patience_s.value)),
        p_src: source(inputs.patience_s),
        own: inputs.own_agents.value, o_src: source(inputs.own_agents),
      })));
    // The scenarios come back in the order asked: one per wave, its seats and all before it.
    result.scenarios.forEach((scenario, index) => {
      const node = waves[index];
      if (!node) return;
      node.dataset.serviceLevel = scenario.service_level;
      node.dataset.abandonRate = scenario.abandon_rate;
      node.dataset.seats = scenario.helper_seats;
      const good = scenario.service_level >= inputs.service_level;
      node.className = `wave-forecast ${good ? "ok" : "short"}`;
      const asa = scenario.asa_s === null ? t("coord.unbounded") : duration(Math.round(scenario.asa_s));
      const values = { sl: percent1(scenario.service_level), ab: percent1(scenario.abandon_rate), asa, n: inputs.own_agents.value + scenario.helper_seats };
      fill(node, t(result.method === "erlang_c" ? "coord.forecast_c" : "coord.forecast", values));
    });
  }

  function setStatus(key) { // kept as a key, so the language switch translates it
    if (key) proposalStatus.dataset.i18n = key;
    else delete proposalStatus.dataset.i18n;
    proposalStatus.textContent = key ? t(key) : "";
  }

  function showFormError(text, code = "") {
    formError.textContent = text;
    formError.dataset.code = code || "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const draft = state.draft;
    if (!draft || !host.value) return showFormError(t("coord.pick_host"));
    const waves = draft.waves.filter((wave) => wave.cities.size)
      .map((wave) => ({ cities: [...wave.cities].sort(), seats_per_city: Number.isFinite(wave.seats) ? wave.seats : 0 }));
    if (!waves.length) return showFormError(t("coord.no_helpers"));
    const body = { host_city: draft.host, waves, overflow_after_s: overflow.value === "" ? 0 : Number(overflow.value) };
    if (shared.checked) body.allow_shared_helpers = true;
    if (callbacks.checked) body.callbacks = true;
    if (reason.value.trim()) body.reason = reason.value.trim();
    showFormError("");
    state.submitting = true;
    submit.disabled = true;
    try {
      const surge = await post("/surges", body);
      banner(() => t("coord.started", { city: city(surge.host_city), id: surge.id }), "ok");
      resetForm();
      await refreshSurges();
      document.getElementById(`surge-${surge.id}`)?.focus();
    } catch (error) {
      showFormError(describe(error), error.code);
    } finally {
      state.submitting = false;
      renderHostBusy();
    }
    return undefined;
  });

  function resetForm() {
    state.proposalSeq++;
    state.forecastSeq++;
    clearTimeout(state.forecastTimer);
    state.draft = null;
    state.hostTouched = false;
    host.value = "";
    reason.value = "";
    shared.checked = false;
    callbacks.checked = false;
    setStatus("");
    form.dataset.state = "idle";
    form.dataset.host = "";
    renderEditor();
    renderHostBusy();
  }

  // --- 3 and 4. the live surges ------------------------------------------------------------------
  async function refreshSurges() {
    const seq = ++state.surgesSeq;
    const surges = await get("/surges?active=true");
    if (seq !== state.surgesSeq || state.closed) return; // a newer read (after an action) won
    state.surges = surges;
    renderHostBusy();
    const live = new Set(surges.map((surge) => surge.id));
    for (const [id, card] of state.cards) {
      if (!live.has(id)) {
        card.root.remove();
        state.cards.delete(id);
      }
    }
    surges.forEach((surge) => {
      const card = state.cards.get(surge.id) || makeCard(surge);
      card.surge = surge;
      updateCard(card);
      surgesList.append(card.root); // keeps the server's order (newest first)
    });
    renderNoSurges();
    renderBoard(); // the elected city's "start" button depends on who hosts
    await Promise.all(surges.map((surge) => refreshExtras(state.cards.get(surge.id))));
  }

  function renderNoSurges() {
    const empty = surgesList.querySelector(".no-surges");
    if (state.cards.size && empty) empty.remove();
    if (!state.cards.size && !empty) surgesList.append(el("p", { class: "muted no-surges" }, t("coord.no_surges")));
    else if (empty) empty.textContent = t("coord.no_surges");
  }

  function makeCard(surge) {
    const id = surge.id;
    const card = {
      surge, history: null, adoptionData: null, historyError: "", adoptionError: "",
      title: el("h3", { id: `surge-${id}-title` }),
      meta: el("p", { class: "surge-meta" }),
      table: el("div", { class: "table-wrap" }),
      chart: el("figure", { class: "surge-chart", id: `surge-${id}-chart` }),
      adoptionBox: el("div", { class: "adoption", id: `surge-${id}-adoption` }),
      activate: el("button", { type: "button", class: "primary", id: `surge-${id}-activate` }),
      end: el("button", { type: "button", class: "danger", id: `surge-${id}-end`, "aria-expanded": "false", "aria-controls": `surge-${id}-confirm` }),
      confirmText: el("p", { id: `surge-${id}-confirm-text` }),
      endReason: el("input", { type: "text", id: `surge-${id}-end-reason`, maxlength: 1000 }),
      confirm: el("button", { type: "button", class: "danger", id: `surge-${id}-confirm-end` }),
      cancel: el("button", { type: "button", id: `surge-${id}-cancel` }),
      error: el("p", { class: "error", role: "alert", id: `surge-${id}-error` }),
      notice: noticeBox(id, { banner }),
    };
    card.reasonLabel = el("label", { for: card.endReason.id });
    card.confirmBox = el("div", { class: "confirm", id: `surge-${id}-confirm`, role: "group", "aria-labelledby": card.confirmText.id, hidden: true },
      card.confirmText, card.reasonLabel, card.endReason, el("div", { class: "actions" }, card.confirm, card.cancel));
    card.root = el("article", { class: "surge-card", id: `surge-${id}`, tabindex: -1, "aria-labelledby": card.title.id, dataset: { host: surge.host_city, id } },
      el("div", { class: "surge-head" }, card.title, el("div", { class: "actions" }, card.activate, card.end)),
      card.meta, card.confirmBox, card.error, card.notice.root,
      el("div", { class: "surge-body" }, card.table, el("div", { class: "surge-side" }, card.chart, card.adoptionBox)));

    const closeConfirm = () => {
      card.confirmBox.hidden = true;
      card.end.setAttribute("aria-expanded", "false");
      card.end.focus();
    };
    card.end.addEventListener("click", () => {
      card.confirmBox.hidden = false;
      card.end.setAttribute("aria-expanded", "true");
      card.confirm.focus();
    });
    card.cancel.addEventListener("click", closeConfirm);
    card.confirmBox.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeConfirm();
    });
    card.confirm.addEventListener("click", () => act(card, `/surges/${id}/end`, card.endReason.value,
      (read) => t(read.status === "draining" ? "coord.ending" : "coord.ended", { city: city(read.host_city) })));
    card.activate.addEventListener("click", () => {
      const number = Number(card.activate.dataset.wave);
      act(card, `/surges/${id}/waves/${number}/activate`, "", (read) => t("coord.activated", { city: city(read.host_city), n: number }));
    });
    state.cards.set(id, card);
    return card;
  }

  async function act(card, path, why, message) {
    card.error.textContent = "";
    for (const button of [card.activate, card.end, card.confirm]) button.disabled = true;
    try {
      const read = await post(path, why.trim() ? { reason: why.trim() } : {});
      banner(() => message(read), "ok");
      await refreshSurges();
    } catch (error) {
      card.error.textContent = t("coord.failed", { message: describe(error) });
      card.error.dataset.code = error.code || "";
    } finally {
      for (const button of [card.activate, card.end, card.confirm]) button.disabled = false;
    }
  }

  function updateCard(card) {
    const surge = card.surge;
    const draining = surge.status === "draining"; // ended: helpers still finish the calls in hand
    const inHand = surge.waves.reduce((sum, wave) => sum + wave.helpers.reduce((n, helper) => n + helper.in_use, 0), 0);
    card.root.dataset.status = surge.status;
    card.title.textContent = t("coord.surge_title", { city: city(surge.host_city), id: surge.id });
    fill(card.meta,
      el("span", { class: `pill ${draining ? "warn" : "ok"}`, id: `surge-${surge.id}-status`, dataset: { status: surge.status } },
        t(draining ? "coord.status_draining" : "coord.status_active")), " ",
      el("span", { class: `pill ${surge.host_waiting ? "warn" : "ok"}`, id: `surge-${surge.id}-waiting` },
        t("coord.host_waiting", { n: surge.host_waiting })), " ",
      el("span", { class: "pill" }, t("coord.overflow_is", { wait: duration(surge.overflow_after_s) })), " ",
      surge.callbacks ? [el("span", { class: "pill", id: `surge-${surge.id}-callbacks` }, t("coord.callbacks_on")), " "] : null,
      el("span", { class: "muted" }, t("coord.since", { time: clock(surge.created_at), who: surge.created_by })),
      !draining && surge.release?.suggested // a suggestion to end: moot once it is ending
        ? [" ", el("span", { class: "pill ok", id: `surge-${surge.id}-release`, title: surge.release.reason_codes.map((code, index) => reasonText(code, surge.release.reasons[index])).join("\n") },
          t("coord.release"))]
        : null,
      draining ? el("span", { class: "draining-note", id: `surge-${surge.id}-draining` }, t("coord.draining_note", { n: inHand })) : null);
    const next = surge.waves.find((wave) => !wave.active);
    card.activate.hidden = !next || draining;
    card.end.hidden = draining;
    card.notice.root.hidden = draining; // notices go to a running surge only
    card.notice.render();
    if (draining) card.confirmBox.hidden = true;
    if (next) {
      card.activate.dataset.wave = next.number;
      card.activate.textContent = t("coord.activate", { n: next.number });
    }
    card.end.textContent = t("coord.end");
    card.confirmText.textContent = t("coord.confirm_end", { city: city(surge.host_city) });
    card.reasonLabel.textContent = t("coord.end_reason");
    card.confirm.textContent = t("coord.confirm");
    card.cancel.textContent = t("coord.cancel");
    fill(card.table, wavesTable(surge));
    renderChart(card);
    renderAdoption(card);
  }

  function wavesTable(surge) {
    const rows = [];
    const totals = { seats: 0, in_use: 0, answered: 0 };
    for (const wave of surge.waves) {
      wave.helpers.forEach((helper, index) => {
        if (wave.active) {
          totals.seats += helper.seats;
          totals.in_use += helper.in_use;
        }
        totals.answered += helper.answered ?? 0;
        const first = index === 0;
        const span = wave.helpers.length;
        rows.push(el("tr", { class: wave.active ? "active" : "pending", dataset: { wave: wave.number, city: helper.city } },
          first ? el("th", { scope: "rowgroup", rowspan: span }, t("coord.wave", { n: wave.number })) : null,
          el("td", {}, city(helper.city)),
          el("td", { class: "num", dataset: { field: "seats" } }, helper.seats),
          el("td", { class: "num", dataset: { field: "in_use" } }, helper.in_use),
          el("td", { class: "num", dataset: { field: "answered" } }, helper.answered ?? "—"),
          first ? el("td", { rowspan: span }, wave.active
            ? el("span", { class: "pill ok" }, t("coord.active_at", { time: hhmm(wave.activated_at) }))
            : el("span", { class: "pill" }, t("coord.pending"))) : null));
      });
    }
    return el("table", { class: "waves-table" },
      el("caption", { class: "visually-hidden" }, t("coord.surge_title", { city: city(surge.host_city), id: surge.id })),
      el("thead", {}, el("tr", {}, ["col_wave", "col_city", "col_seats", "col_in_use", "col_answered", "col_state"]
        .map((key) => el("th", { scope: "col" }, t(`coord.${key}`))))),
      el("tbody", {}, rows),
      el("tfoot", {}, el("tr", {}, el("th", { scope: "row", colspan: 2 }, t("coord.total")),
        el("td", { class: "num" }, totals.seats), el("td", { class: "num" }, totals.in_use),
        el("td", { class: "num", dataset: { field: "answered-total" } }, totals.answered), el("td", {}))));
  }

  async function refreshExtras(card) {
    if (!card) return;
    const code = card.surge.host_city;
    const [history, adoption] = await Promise.allSettled([
      get(`/pressure/history?city=${code}&minutes=60`),
      get(`/cities/${code}/scripts/adoption`),
    ]);
    if (history.status === "fulfilled") [card.history, card.historyError] = [history.value, ""];
    else card.historyError = describe(history.reason);
    if (adoption.status === "fulfilled") [card.adoptionData, card.adoptionError] = [adoption.value, ""];
    else card.adoptionError = describe(adoption.reason);
    renderChart(card);
    renderAdoption(card);
  }

  function renderChart(card) {
    const code = card.surge.host_city;
    const title = t("coord.queue_chart", { city: city(code) });
    const caption = el("figcaption", {}, title);
    const samples = card.history?.samples || [];
    if (card.historyError) fill(card.chart, caption, el("p", { class: "error" }, card.historyError));
    else if (!samples.length) fill(card.chart, caption, el("p", { class: "muted" }, t("coord.no_history")));
    else {
      fill(card.chart, caption, chart({
        title,
        labels: samples.map((sample) => hhmm(sample.at)),
        series: [
          { name: t("coord.series_waiting"), values: samples.map((sample) => sample.waiting) },
          { name: t("coord.series_agents"), values: samples.map((sample) => sample.agents_free + sample.agents_busy) },
        ],
      }));
    }
  }

  function renderAdoption(card) {
    const code = card.surge.host_city;
    const data = card.adoptionData;
    const heading = el("h4", {}, t("coord.adoption", { city: city(code) }));
    if (card.adoptionError || !data) {
      fill(card.adoptionBox, heading, card.adoptionError ? el("p", { class: "error" }, card.adoptionError) : null);
      return;
    }
    const behind = data.behind.slice(0, 20);
    fill(card.adoptionBox,
      heading,
      el("p", { dataset: { version: data.version } }, t("coord.adoption_summary", { v: data.version, n: data.serving })),
      el("ul", { class: "by-version" }, data.by_version.map((entry) => el("li", {
        class: `pill ${entry.version === data.version ? "ok" : "warn"}`, dataset: { version: entry.version ?? "none" },
      }, `${entry.version === null ? t("coord.unacked") : t("coord.version", { v: entry.version })}: ${t("coord.agents_n", { n: entry.agents })}`))),
      behind.length
        ? el("table", { class: "behind" },
          el("caption", {}, t("coord.behind")),
          el("thead", {}, el("tr", {}, ["col_agent", "col_home", "col_version"].map((key) => el("th", { scope: "col" }, t(`coord.${key}`))))),
          el("tbody", {}, behind.map((agent) => el("tr", {},
            el("td", {}, agent.name), el("td", {}, city(agent.city)),
            el("td", {}, agent.version === null ? t("coord.unacked") : t("coord.version", { v: agent.version }))))))
        : el("p", { class: "muted" }, t("coord.all_current")),
      data.behind.length > behind.length ? el("p", { class: "muted" }, t("coord.more", { n: data.behind.length - behind.length })) : null);
  }

  // --- polling ----------------------------------------------------------------------------------
  async function poll() {
    if (state.polling || state.closed) return;
    state.polling = true;
    try {
      const results = await Promise.allSettled([refreshBoard(), refreshSurges(), agentsView.refresh()]);
      const failed = results.find((result) => result.status === "rejected");
      refreshError.textContent = failed ? t("coord.refresh_failed", { message: describe(failed.reason) }) : "";
    } finally {
      state.polling = false;
    }
  }

  onLanguage(() => {
    if (state.closed) return;
    renderBoard();
    renderHostOptions();
    renderEditor();
    renderHostBusy();
    for (const card of state.cards.values()) updateCard(card);
    renderNoSurges();
    agentsView.render();
    hotspots.render();
  });

  renderHostOptions();
  renderEditor();
  translate(view);
  poll();
  const timer = setInterval(poll, POLL_MS);
  return () => {
    state.closed = true;
    clearInterval(timer);
    clearTimeout(state.forecastTimer);
    hotspots.close();
  };
}
