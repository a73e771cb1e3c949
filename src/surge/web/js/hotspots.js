// The coordinator's hot issues (热点预警): the categories and question terms whose share of the last
// hour's tickets rose well above their baseline. Read from GET /hotspots when shown, every minute
// and after each reconnection; a `hotspot` frame on /ws/admin adds one the moment it appears.
import { cityName, el, get, socketUrl } from "./api.js";
import { add, language, t } from "./i18n.js";

const REFRESH_MS = 60_000; // the server checks once a minute too (SURGE_HOTSPOT_CHECK_S)

add({
  zh: {
    "hot.title": "热点预警", "hot.hint": "近一小时工单中占比明显高于此前基线的诉求分类与关键词",
    "hot.live": "实时", "hot.offline": "连接中断，正在重连…", "hot.none": "目前没有热点",
    "hot.col_issue": "热点", "hot.col_kind": "类型", "hot.col_count": "近一小时工单", "hot.col_share": "占比",
    "hot.col_baseline": "基线占比", "hot.col_lift": "倍数", "hot.col_cities": "热点城市",
    "hot.category": "诉求分类", "hot.term": "关键词", "hot.province": "全省", "hot.new": "新",
    "hot.appeared": "新热点：{label}", "hot.failed": "热点读取失败：{message}",
  },
  en: {
    "hot.title": "Hot issues", "hot.hint": "Categories and terms whose share of the last hour's tickets is well above their usual share (the hours before)",
    "hot.live": "Live", "hot.offline": "Disconnected, reconnecting…", "hot.none": "No hot issue right now",
    "hot.col_issue": "Issue", "hot.col_kind": "Kind", "hot.col_count": "Tickets this hour", "hot.col_share": "Share",
    "hot.col_baseline": "Baseline", "hot.col_lift": "Lift", "hot.col_cities": "Hot in",
    "hot.category": "Category", "hot.term": "Term", "hot.province": "Province", "hot.new": "new",
    "hot.appeared": "New hot issue: {label}", "hot.failed": "Hot issues could not be read: {message}",
  },
});

const percent = (share) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
const label = (item) => (language() === "en" ? item.label.en : item.label.zh);
const same = (a, b) => a.kind === b.kind && a.key === b.key;
const order = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
// The server's order: highest lift, then most tickets, categories before terms, then by key.
const hottestFirst = (a, b) => b.lift - a.lift || b.count - a.count || order(a.kind, b.kind) || order(a.key, b.key);

export function hotspotsPanel({ banner }) {
  const state = { items: [], fresh: new Set(), error: "", live: false, socket: null, retry: 0, closed: false };
  const title = el("h2", { id: "hotspots-title" });
  const hint = el("p", { class: "muted", id: "hotspots-hint" });
  const status = el("span", { id: "hotspots-status", class: "pill", role: "status" });
  const error = el("p", { id: "hotspots-error", class: "error", role: "alert" });
  const table = el("div", { id: "hotspots-table", class: "table-wrap" });
  const root = el("section", { class: "card", id: "hotspots", "aria-labelledby": "hotspots-title", "aria-describedby": "hotspots-hint" },
    el("div", { class: "toolbar" }, title, status), hint, error, table);

  async function refresh() {
    try {
      state.items = await get("/hotspots");
      state.fresh = new Set([...state.fresh].filter((id) => state.items.some((item) => `${item.kind}:${item.key}` === id)));
      state.error = "";
    } catch (failure) {
      state.error = t("hot.failed", { message: failure.message });
    }
    render();
  }

  function receive(frame) {
    if (frame.type !== "hotspot") return;
    const item = frame.hotspot;
    state.items = [...state.items.filter((other) => !same(other, item)), item].sort(hottestFirst);
    state.fresh.add(`${item.kind}:${item.key}`);
    banner(() => t("hot.appeared", { label: label(item) }), "warn");
    render();
  }

  function connect() {
    const socket = new WebSocket(socketUrl("/ws/admin"));
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.retry = 0;
      state.live = true;
      render();
      refresh(); // what appeared while the stream was down
    });
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      state.live = false;
      render();
      if (state.closed) return;
      if (event.code === 4401) {
        window.dispatchEvent(new Event("surge:logged-out"));
        return;
      }
      setTimeout(() => state.closed || connect(), Math.min(10000, 500 * 2 ** state.retry++));
    });
  }

  function render() {
    title.textContent = t("hot.title");
    hint.textContent = t("hot.hint");
    status.textContent = t(state.live ? "hot.live" : "hot.offline");
    status.className = `pill ${state.live ? "ok" : "warn"}`;
    status.dataset.state = state.live ? "live" : "offline";
    error.textContent = state.error;
    if (!state.items.length) {
      table.replaceChildren(el("p", { class: "muted", id: "hotspots-none" }, t("hot.none")));
      return;
    }
    const heads = ["col_issue", "col_kind", "col_count", "col_share", "col_baseline", "col_lift", "col_cities"];
    table.replaceChildren(el("table", { class: "hotspots-table" },
      el("caption", { class: "visually-hidden" }, t("hot.title")),
      el("thead", {}, el("tr", {}, heads.map((key) => el("th", { scope: "col" }, t(`hot.${key}`))))),
      el("tbody", {}, state.items.map((item) => {
        const id = `${item.kind}:${item.key}`;
        const cities = item.cities.map((code) => cityName(code, language()));
        if (item.province) cities.unshift(t("hot.province"));
        return el("tr", { dataset: { kind: item.kind, key: item.key, fresh: state.fresh.has(id) ? "true" : "false" } },
          el("th", { scope: "row" }, label(item), item.kind === "category" ? el("small", { class: "muted" }, ` ${item.key}`) : null,
            state.fresh.has(id) ? el("span", { class: "pill warn" }, t("hot.new")) : null),
          el("td", {}, t(`hot.${item.kind}`)),
          el("td", { class: "num", dataset: { field: "count" } }, item.count),
          el("td", { class: "num", dataset: { field: "share" } }, percent(item.share)),
          el("td", { class: "num", dataset: { field: "baseline" } }, percent(item.baseline_share)),
          el("td", { class: "num", dataset: { field: "lift" } }, `×${item.lift.toFixed(1)}`),
          el("td", { dataset: { field: "cities" } }, cities.join(language() === "en" ? ", " : "、")));
      }))));
  }

  render();
  connect();
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return {
    root,
    render,
    close() {
      state.closed = true;
      clearInterval(timer);
      state.socket?.close(1000);
    },
  };
}
