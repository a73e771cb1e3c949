// The ticket list (工单查询): a city admin's calls and its agents' calls for other hosts (callers
// masked), or every city's for the coordinator. Filters, next and previous pages, a CSV download.
import { CITY_NAMES, cityName, download, el, get } from "./api.js";
import { add, language, messageLines, onLanguage, t, translate } from "./i18n.js";

add({
  zh: {
    "tickets.title": "工单查询", "tickets.filters": "筛选条件", "tickets.pages": "翻页",
    "tickets.from": "起始日期", "tickets.to": "截止日期", "tickets.status": "状态", "tickets.category": "诉求分类",
    "tickets.city": "来电城市", "tickets.served_by": "接听城市", "tickets.q": "搜索", "tickets.q_hint": "摘要、分类、号码或工单编号",
    "tickets.any": "全部", "tickets.search": "查询", "tickets.csv": "下载 CSV", "tickets.next": "下一页", "tickets.previous": "上一页",
    "tickets.page": "第 {n} 页，本页 {count} 条", "tickets.none": "没有符合条件的工单。", "tickets.loading": "正在查询…",
    "tickets.failed": "查询失败（{status} {code}）：{message}", "tickets.downloading": "正在下载 {name}…",
    "tickets.downloaded": "已下载 {name}", "tickets.table": "工单列表", "tickets.for_other": "援助他市",
    "tickets.col.id": "工单编号", "tickets.col.received_at": "来电时间", "tickets.col.city": "来电城市",
    "tickets.col.served_by": "接听城市", "tickets.col.caller": "来电号码", "tickets.col.channel": "渠道",
    "tickets.col.status": "状态", "tickets.col.category": "诉求分类", "tickets.col.summary": "工单摘要",
    "tickets.status.queued": "排队中", "tickets.status.offered": "振铃中", "tickets.status.connected": "通话中",
    "tickets.status.completed": "已办结", "tickets.status.abandoned": "已放弃",
    "tickets.channel.phone": "电话", "tickets.channel.app": "App", "tickets.channel.wechat": "微信",
    "tickets.channel.web": "网站", "tickets.channel.sms": "短信",
  },
  en: {
    "tickets.title": "Tickets", "tickets.filters": "Filters", "tickets.pages": "Pages",
    "tickets.from": "From", "tickets.to": "To", "tickets.status": "Status", "tickets.category": "Category",
    "tickets.city": "Caller's city", "tickets.served_by": "Served by", "tickets.q": "Search", "tickets.q_hint": "Summary, category, number or ticket id",
    "tickets.any": "All", "tickets.search": "Search", "tickets.csv": "Download CSV", "tickets.next": "Next page", "tickets.previous": "Previous page",
    "tickets.page": "Page {n}, {count} on this page", "tickets.none": "No ticket matches.", "tickets.loading": "Searching…",
    "tickets.failed": "The search failed ({status} {code}): {message}", "tickets.downloading": "Downloading {name}…",
    "tickets.downloaded": "Downloaded {name}", "tickets.table": "Tickets", "tickets.for_other": "For another city",
    "tickets.col.id": "Ticket", "tickets.col.received_at": "Received", "tickets.col.city": "Caller's city",
    "tickets.col.served_by": "Served by", "tickets.col.caller": "Caller", "tickets.col.channel": "Channel",
    "tickets.col.status": "Status", "tickets.col.category": "Category", "tickets.col.summary": "Summary",
    "tickets.status.queued": "Waiting", "tickets.status.offered": "Ringing", "tickets.status.connected": "On the line",
    "tickets.status.completed": "Completed", "tickets.status.abandoned": "Abandoned",
    "tickets.channel.phone": "Phone", "tickets.channel.app": "App", "tickets.channel.wechat": "WeChat",
    "tickets.channel.web": "Web", "tickets.channel.sms": "SMS",
  },
});

const STATUSES = ["queued", "offered", "connected", "completed", "abandoned"];
const COLUMNS = ["id", "received_at", "city", "served_by", "caller", "channel", "status", "category", "summary"];
const ZONE = "Asia/Shanghai";
const NONE = "—";

function addStylesheet() {
  if (document.querySelector("link[data-page=tickets]")) return;
  const href = new URL("../css/tickets.css", import.meta.url).href;
  document.head.append(el("link", { rel: "stylesheet", href, "data-page": "tickets" }));
}

// A label for a code, or the code itself when this console does not know it yet.
function named(prefix, code) {
  const key = `${prefix}.${code}`;
  const text = t(key);
  return text === key ? code : text;
}

function localTime(iso) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const p = Object.fromEntries(parts.map((part) => [part.type, part.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

export function mount(view, { who }) {
  addStylesheet();
  const lang = () => language();
  const state = { mounted: true, loading: 0, cursors: [null], items: [], next: null, asked: null, categories: [] };

  const field = (id, key, control) =>
    el("div", { class: "field" }, el("label", { for: id, "data-i18n": key }), control);
  const from = el("input", { id: "tickets-from", name: "from", type: "date" });
  const to = el("input", { id: "tickets-to", name: "to", type: "date" });
  const status = el("select", { id: "tickets-status", name: "status" });
  const category = el("select", { id: "tickets-category", name: "category" });
  const city = el("select", { id: "tickets-city", name: "city" });
  const servedBy = el("select", { id: "tickets-served-by", name: "served_by" });
  const q = el("input", { id: "tickets-q", name: "q", type: "search", maxlength: 200, "aria-describedby": "tickets-q-hint" });
  const form = el("form", { class: "tickets-form", novalidate: true, "data-i18n-label": "tickets.filters" },
    field("tickets-from", "tickets.from", from),
    field("tickets-to", "tickets.to", to),
    field("tickets-status", "tickets.status", status),
    field("tickets-category", "tickets.category", category),
    field("tickets-city", "tickets.city", city),
    field("tickets-served-by", "tickets.served_by", servedBy),
    el("div", { class: "field wide" }, el("label", { for: "tickets-q", "data-i18n": "tickets.q" }), q,
      el("span", { id: "tickets-q-hint", class: "muted hint", "data-i18n": "tickets.q_hint" })),
    el("div", { class: "buttons" },
      el("button", { type: "submit", id: "tickets-search", class: "primary", "data-i18n": "tickets.search" }),
      el("button", { type: "button", id: "tickets-csv", "data-i18n": "tickets.csv" })));
  const line = el("p", { id: "tickets-status-line", class: "muted", role: "status", "aria-live": "polite" });
  const error = el("p", { id: "tickets-error", class: "tickets-error", role: "alert", hidden: true });
  const results = el("div", { id: "tickets-results" });
  const previous = el("button", { type: "button", id: "tickets-previous", disabled: true, "data-i18n": "tickets.previous" });
  const next = el("button", { type: "button", id: "tickets-next", disabled: true, "data-i18n": "tickets.next" });
  const pager = el("nav", { class: "tickets-pager", "data-i18n-label": "tickets.pages" }, previous, next);

  view.append(el("section", { class: "card tickets-page", "aria-labelledby": "tickets-title" },
    el("h1", { id: "tickets-title", "data-i18n": "tickets.title" }), form, line, error, results, pager));

  // --- the filters' options ----------------------------------------------------------------------
  function options(select, entries) {
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, t("tickets.any")), ...entries.map(([value, text]) => el("option", { value }, text)));
    select.value = entries.some(([value]) => value === chosen) ? chosen : "";
  }

  function fillOptions() {
    const cities = Object.keys(CITY_NAMES).map((code) => [code, cityName(code, lang())]);
    options(status, STATUSES.map((code) => [code, named("tickets.status", code)]));
    options(city, cities);
    options(servedBy, cities);
    const groups = new Map();
    for (const c of state.categories) if (!groups.has(c.parent)) groups.set(c.parent, c.parent_name);
    options(category, [
      ...[...groups].map(([code, name]) => [code, `${code} ${name}`]),
      ...state.categories.map((c) => [c.code, `${c.code} ${lang() === "en" && c.name_en ? c.name_en : c.name}`]),
    ]);
  }

  function categoryName(code) {
    const found = state.categories.find((c) => c.code === code);
    if (!found) return code ?? NONE;
    return lang() === "en" && found.name_en ? found.name_en : found.name;
  }

  // --- loading -----------------------------------------------------------------------------------
  // Messages are kept as functions of the language, so that the language switch rewords them.
  const { say, sayAgain } = messageLines(line, error);

  function describe(failure) {
    if (failure.code === "network") return t("error.network");
    return t("tickets.failed", { status: failure.status, code: failure.code, message: failure.message });
  }

  function filters() {
    const wanted = { from: from.value, to: to.value, status: status.value, category: category.value, city: city.value, served_by: servedBy.value, q: q.value.trim() };
    return Object.fromEntries(Object.entries(wanted).filter(([, value]) => value));
  }

  const search = (params) => new URLSearchParams(params).toString();

  async function load(pageIndex) {
    const current = ++state.loading;
    const cursor = state.cursors[pageIndex];
    results.setAttribute("aria-busy", "true");
    say("status", () => t("tickets.loading"));
    try {
      const body = await get(`/calls?${search({ ...state.asked, ...(cursor ? { cursor } : {}) })}`);
      if (!state.mounted || current !== state.loading) return;
      state.items = body.items;
      state.next = body.next_cursor;
      state.page = pageIndex;
      state.cursors.length = pageIndex + 1;
      if (body.next_cursor) state.cursors.push(body.next_cursor);
      say("error", null);
      say("status", () => t("tickets.page", { n: pageIndex + 1, count: state.items.length }));
    } catch (failure) {
      if (!state.mounted || current !== state.loading) return;
      state.items = [];
      state.next = null;
      say("status", null);
      say("error", () => describe(failure));
    }
    results.removeAttribute("aria-busy");
    render();
  }

  function restart() {
    state.asked = filters();
    state.cursors = [null];
    load(0);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    restart();
  });
  next.addEventListener("click", () => load(state.page + 1));
  previous.addEventListener("click", () => load(state.page - 1));

  const csv = form.querySelector("#tickets-csv");
  csv.addEventListener("click", async () => {
    const fallback = `surge-tickets-${who.city ?? "province"}.csv`;
    csv.disabled = true;
    csv.setAttribute("aria-busy", "true");
    say("status", () => t("tickets.downloading", { name: fallback }));
    try {
      const name = await download(`/calls?${search({ ...filters(), format: "csv", lang: lang() })}`, fallback);
      say("status", () => t("tickets.downloaded", { name }));
      say("error", null);
    } catch (failure) {
      say("status", null);
      say("error", () => describe(failure));
    } finally {
      csv.disabled = false;
      csv.removeAttribute("aria-busy");
    }
  });

  // --- rendering ---------------------------------------------------------------------------------
  function cell(item, key) {
    switch (key) {
      case "id": return el("th", { scope: "row" }, String(item.id));
      case "received_at": return el("td", { class: "num" }, localTime(item.received_at));
      case "city": {
        const forOther = who.city && item.city !== who.city;
        return el("td", {}, cityName(item.city, lang()), forOther ? [" ", el("span", { class: "pill warn" }, t("tickets.for_other"))] : null);
      }
      case "served_by": return el("td", {}, item.served_by ? cityName(item.served_by, lang()) : NONE);
      case "caller": return el("td", { class: "num" }, item.caller);
      case "channel": return el("td", {}, named("tickets.channel", item.channel));
      case "status": return el("td", {}, named("tickets.status", item.status));
      case "category": return el("td", {}, item.category_code ? categoryName(item.category_code) : NONE);
      default: return el("td", { class: "summary" }, item.summary ?? NONE);
    }
  }

  function render() {
    previous.disabled = !state.page;
    next.disabled = !state.next;
    if (!state.items.length) {
      results.replaceChildren(!error.hidden ? "" : el("p", { id: "tickets-none", class: "muted" }, t("tickets.none")));
      return;
    }
    const table = el("table", { id: "tickets-table", class: "tickets-table" },
      el("thead", {}, el("tr", {}, COLUMNS.map((key) => el("th", { scope: "col" }, t(`tickets.col.${key}`))))),
      el("tbody", {}, state.items.map((item) => el("tr", { dataset: { id: item.id } }, COLUMNS.map((key) => cell(item, key))))));
    results.replaceChildren(el("div", { class: "table-scroll", role: "region", tabindex: 0, "aria-label": t("tickets.table") }, table));
  }

  onLanguage(() => {
    if (!state.mounted) return;
    fillOptions();
    translate(view);
    render();
    sayAgain();
  });

  state.page = 0;
  fillOptions();
  get("/categories").then((categories) => {
    if (!state.mounted) return;
    state.categories = categories;
    fillOptions();
    render();
  }).catch(() => { /* the filter lists codes only */ });
  restart();

  return () => {
    state.mounted = false;
  };
}
