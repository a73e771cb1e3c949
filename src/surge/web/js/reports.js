// The daily data report (数据日报): pick a day and a place, read the figures, download the files.
// Labels, units and definitions come from the report's own metadata, so the page and the CSV/XLSX
// files always name a figure the same way.
import { CITY_NAMES, cityName, download as saveFile, el, get } from "./api.js";
import { chart } from "./chart.js";
import { add, duration, language, messageLines, onLanguage, t, translate } from "./i18n.js";
import { ledgerCard } from "./ledger.js";

add({
  zh: {
    "reports.title": "数据日报", "reports.date": "日期", "reports.scope": "范围", "reports.province": "全省",
    "reports.load": "查询", "reports.loading": "正在生成日报…", "reports.loaded": "已载入 {date} {place}的日报",
    "reports.failed": "无法获取日报（{status} {code}）：{message}", "reports.pick_date": "请选择日期",
    "reports.downloads": "下载", "reports.downloading": "正在下载 {name}…", "reports.downloaded": "已下载 {name}",
    "reports.csv": "{part} CSV", "reports.xlsx": "完整报表 XLSX", "reports.json": "完整数据 JSON",
    "reports.heading": "{date} · {place}", "reports.generated": "生成于 {at}（{zone}）",
    "reports.thresholds": "服务水平时限 {sl}，短时放弃阈值 {short}，排班目标 {target}",
    "reports.part.summary": "概要", "reports.part.helpers": "援助城市", "reports.part.hourly": "分时",
    "reports.part.staffing": "明日排班建议", "reports.key_figures": "关键指标", "reports.all_figures": "全部指标",
    "reports.show_all": "显示全部指标", "reports.show_key": "只显示关键指标", "reports.figure": "指标",
    "reports.value": "数值", "reports.definition": "说明", "reports.open_city": "查看{city}日报",
    "reports.no_helpers": "当日没有援助城市接通本范围的来电。", "reports.hourly_chart": "分时呼入、接通、放弃与援助接通",
    "reports.hourly_table": "分时明细", "reports.staffing_chart": "{date} 各时段所需坐席与本市坐席",
    "reports.staffing_cities": "各市高峰所需坐席与本市坐席", "reports.staffing_table": "分时排班明细",
    "reports.no_staffing": "全省范围没有排班建议，请选择城市查看。", "reports.definitions": "指标说明",
    "reports.notes": "统计口径", "reports.city": "城市", "reports.for_date": "排班日期", "reports.method": "测算方法",
    "reports.erlang_a": "Erlang A（平均耐心 {patience}）", "reports.erlang_c": "Erlang C",
    "reports.staffing_aht": "平均处理时长", "reports.target": "目标", "reports.target_value": "{share} 的来电在 {within} 内接通",
    "reports.own_agents": "本市坐席数", "reports.peak_agents_needed": "高峰所需坐席", "reports.peak_helper_seats": "高峰需申请援助坐席",
    "reports.agent_hours_needed": "所需坐席工时", "reports.helper_seat_hours": "需申请援助坐席工时",
    "reports.agent_hours": "{n} 坐席·小时",
    "reports.none": "—", "reports.surge": "#{id}",
  },
  en: {
    "reports.title": "Daily report", "reports.date": "Date", "reports.scope": "Scope", "reports.province": "Province",
    "reports.load": "Show", "reports.loading": "Compiling the report…", "reports.loaded": "Loaded the report of {date}, {place}",
    "reports.failed": "The report could not be made ({status} {code}): {message}", "reports.pick_date": "Choose a date",
    "reports.downloads": "Download", "reports.downloading": "Downloading {name}…", "reports.downloaded": "Downloaded {name}",
    "reports.csv": "{part} CSV", "reports.xlsx": "Whole report XLSX", "reports.json": "All data JSON",
    "reports.heading": "{date} · {place}", "reports.generated": "Made at {at} ({zone})",
    "reports.thresholds": "Service-level time {sl}, short-abandon threshold {short}, staffing target {target}",
    "reports.part.summary": "Summary", "reports.part.helpers": "Helper cities", "reports.part.hourly": "Hourly",
    "reports.part.staffing": "Next-day staffing", "reports.key_figures": "Key figures", "reports.all_figures": "All figures",
    "reports.show_all": "Show all figures", "reports.show_key": "Show key figures only", "reports.figure": "Figure",
    "reports.value": "Value", "reports.definition": "Definition", "reports.open_city": "Open {city}'s report",
    "reports.no_helpers": "No helper city answered calls here that day.", "reports.hourly_chart": "Received, answered, abandoned and answered by helpers, by hour",
    "reports.hourly_table": "Hour by hour", "reports.staffing_chart": "Agents needed and own agents by hour, {date}",
    "reports.staffing_cities": "Peak agents needed and own agents by city", "reports.staffing_table": "Staffing hour by hour",
    "reports.no_staffing": "The province has no staffing advice of its own: choose a city.", "reports.definitions": "Definitions",
    "reports.notes": "How figures are counted", "reports.city": "City", "reports.for_date": "For", "reports.method": "Method",
    "reports.erlang_a": "Erlang A (mean patience {patience})", "reports.erlang_c": "Erlang C",
    "reports.staffing_aht": "Average handling time", "reports.target": "Target", "reports.target_value": "{share} of calls answered within {within}",
    "reports.own_agents": "Own agents", "reports.peak_agents_needed": "Peak agents needed", "reports.peak_helper_seats": "Peak helper seats to request",
    "reports.agent_hours_needed": "Agent-hours needed", "reports.helper_seat_hours": "Helper seat-hours to request",
    "reports.agent_hours": "{n} agent-hours",
    "reports.none": "—", "reports.surge": "#{id}",
  },
});

const PARTS = ["summary", "helpers", "hourly", "staffing"];
const TILES = ["received", "unique_callers", "repeat_attempts", "answered", "connection_rate", "service_level", "asa_s", "wait_p90_s", "aht_s", "helper_share", "satisfaction_rate"];
const KEY_COLUMNS = [
  "received", "unique_callers", "repeat_attempts", "answered", "abandoned", "connection_rate", "abandonment_rate", "service_level", "asa_s", "wait_p90_s",
  "aht_s", "answered_by_helpers", "helper_share", "answered_for_others", "satisfaction_rate", "seats_active", "seats",
];
const HOURLY_SERIES = ["received", "answered", "abandoned", "answered_by_helpers"];
const ZONE = "Asia/Shanghai";
const NONE = "—";

// The page's stylesheet, added to the document once however often the page is opened.
function addStylesheet() {
  if (document.querySelector("link[data-page=reports]")) return;
  const href = new URL("../css/reports.css", import.meta.url).href;
  document.head.append(el("link", { rel: "stylesheet", href, "data-page": "reports" }));
}

// --- dates and numbers ---------------------------------------------------------------------------
function localParts(when, zone) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(when);
  return Object.fromEntries(parts.map((part) => [part.type, part.value]));
}

function isoDay(when, zone = ZONE) {
  const p = localParts(when, zone);
  return `${p.year}-${p.month}-${p.day}`;
}

function localTime(iso, zone) {
  const p = localParts(new Date(iso), zone || ZONE);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

const hourLabel = (iso) => iso.slice(11, 16); // "2021-07-25T09:00:00+08:00": the local hour as given
const locale = () => (language() === "en" ? "en" : "zh-CN");

function number(value, digits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}

function share(value) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(value);
}

// One figure as text, by its unit; null (nothing to divide by) is a dash.
function format(value, unit) {
  if (value === null || value === undefined) return NONE;
  if (Array.isArray(value)) return value.length ? value.map((id) => t("reports.surge", { id })).join(", ") : NONE;
  switch (unit) {
    case "share": return share(value);
    case "seconds": return duration(value);
    case "hours": return number(value, 2);
    case "calls":
    case "callers":
    case "count":
    case "agents": return number(value);
    default: return String(value);
  }
}

function describe(failure) {
  if (failure.code === "network") return t("error.network");
  return t("reports.failed", { status: failure.status, code: failure.code, message: failure.message });
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  return search.toString();
}

// --- the page ------------------------------------------------------------------------------------
export function mount(view, { who }) {
  addStylesheet();
  const coordinator = who.role === "coordinator";
  const state = { report: null, shown: null, allColumns: false, mounted: true, loading: 0, timer: null, focusAfter: false };
  const lang = () => language();

  const date = el("input", { id: "report-date", name: "date", type: "date", required: true, max: isoDay(new Date()) });
  date.value = isoDay(new Date(Date.now() - 86_400_000));
  const scope = el("select", { id: "report-city", name: "city" });
  const status = el("p", { id: "report-status", class: "muted", role: "status", "aria-live": "polite" });
  const error = el("p", { id: "report-error", class: "report-error", role: "alert", hidden: true });
  const results = el("div", { id: "report-results", "aria-live": "off" });
  const downloads = el("div", { id: "report-downloads", class: "report-downloads", role: "group", "aria-labelledby": "downloads-title" });
  const form = el("form", { class: "report-form", novalidate: true, "aria-labelledby": "report-page-title" },
    el("div", { class: "field" }, el("label", { for: "report-date", "data-i18n": "reports.date" }), date),
    el("div", { class: "field" }, el("label", { for: "report-city", "data-i18n": "reports.scope" }), scope),
    el("button", { type: "submit", id: "report-load", class: "primary", "data-i18n": "reports.load" }));

  view.append(
    el("section", { class: "card report-controls", "aria-labelledby": "report-page-title" },
      el("h1", { id: "report-page-title", "data-i18n": "reports.title" }),
      form,
      el("div", { class: "report-download-bar" }, el("span", { id: "downloads-title", class: "label", "data-i18n": "reports.downloads" }), downloads),
      status, error),
    results,
  );
  const ledger = ledgerCard({ day: date.value });
  view.append(ledger.element);

  function fillScope() {
    const chosen = scope.value || (coordinator ? "" : who.city);
    const codes = coordinator ? Object.keys(CITY_NAMES) : [who.city];
    scope.replaceChildren(
      ...(coordinator ? [el("option", { value: "" }, t("reports.province"))] : []),
      ...codes.map((code) => el("option", { value: code }, cityName(code, lang()))));
    scope.value = chosen;
  }

  // --- loading -----------------------------------------------------------------------------------
  function wanted() {
    return { date: date.value, city: coordinator ? scope.value : who.city };
  }

  // Messages are kept as functions of the language, so that the language switch rewords them.
  const { say, sayAgain } = messageLines(status, error);

  async function load() {
    clearTimeout(state.timer);
    const asked = wanted();
    if (!asked.date) {
      say("error", () => t("reports.pick_date"));
      date.focus();
      return;
    }
    const current = ++state.loading;
    results.setAttribute("aria-busy", "true");
    say("status", () => t("reports.loading"));
    try {
      const report = await get(`/reports/daily?${query(asked)}`);
      if (!state.mounted || current !== state.loading) return;
      state.report = report;
      state.shown = asked;
      say("error", null);
      say("status", () => t("reports.loaded", { date: report.date, place: placeName(report) }));
    } catch (failure) {
      if (!state.mounted || current !== state.loading) return;
      state.report = null; // never leave another day's figures under the new choice
      state.shown = null;
      say("status", null);
      say("error", () => describe(failure));
    }
    results.removeAttribute("aria-busy");
    render();
    if (state.focusAfter && state.report) document.getElementById("report-heading")?.focus();
    state.focusAfter = false;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  scope.addEventListener("change", load);
  // Typing a date changes it a digit at a time: wait until the typing stops.
  date.addEventListener("change", () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(load, 400);
  });

  // --- downloads ---------------------------------------------------------------------------------
  async function download(button, params, fallback) {
    const shown = state.shown;
    if (!shown) return;
    const path = `/reports/daily?${query({ date: shown.date, city: shown.city, ...params })}`;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    say("status", () => t("reports.downloading", { name: fallback }));
    try {
      const name = await saveFile(path, fallback);
      say("status", () => t("reports.downloaded", { name }));
      say("error", null);
    } catch (failure) {
      say("status", null);
      say("error", () => describe(failure));
    } finally {
      button.disabled = !state.report;
      button.removeAttribute("aria-busy");
    }
  }

  function renderDownloads() {
    const shown = state.shown;
    const stem = shown ? `surge-daily-${shown.date}-${shown.city || "province"}` : "";
    const button = (id, label, params, fallback) => {
      const made = el("button", { type: "button", id, disabled: !shown }, label);
      made.addEventListener("click", () => download(made, params, fallback));
      return made;
    };
    downloads.replaceChildren(
      ...PARTS.map((part) => button(`download-csv-${part}`, t("reports.csv", { part: t(`reports.part.${part}`) }),
        { format: "csv", part, lang: lang() }, `${stem}-${part}.csv`)),
      button("download-xlsx", t("reports.xlsx"), { format: "xlsx", lang: lang() }, `${stem}.xlsx`),
      button("download-json", t("reports.json"), { format: "json" }, `${stem}.json`),
    );
  }

  // --- rendering ---------------------------------------------------------------------------------
  function placeName(report) {
    if (report.scope === "province") return t("reports.province");
    return cityName(report.scope, lang());
  }

  const definitionsOf = (part) => state.report.metadata.definitions[part];
  const label = (definition) => (lang() === "en" ? definition.en : definition.zh);
  const rowName = (row) => (row.code === null ? t("reports.province") : lang() === "en" ? row.name_en : row.name);

  function headerCell(part, key, attributes = {}) {
    const definition = definitionsOf(part)[key];
    const numeric = definition.unit !== "text";
    return el("th", { scope: "col", class: numeric ? "num" : null, title: definition.definition, ...attributes }, label(definition));
  }

  function valueCell(part, key, value) {
    const definition = definitionsOf(part)[key];
    const numeric = definition.unit !== "text";
    return el("td", { class: numeric ? "num" : null, dataset: { key } }, format(value, definition.unit));
  }

  function scroller(labelText, table) {
    // A focusable region, so that a keyboard can scroll a table wider than the screen.
    return el("div", { class: "table-scroll", role: "region", tabindex: 0, "aria-label": labelText }, table);
  }

  function section(id, title, ...children) {
    return el("section", { id, class: "card report-part", "aria-labelledby": `${id}-title` },
      el("h2", { id: `${id}-title` }, title), ...children);
  }

  function render() {
    renderDownloads();
    const report = state.report;
    if (!report) {
      results.replaceChildren();
      return;
    }
    const place = report.province ?? report.cities[0];
    results.replaceChildren(
      renderHeading(report),
      report.province ? renderSummaryTable(report) : renderTiles(report.cities[0]),
      renderHelpers(report),
      renderHourly(place),
      renderStaffing(report),
      renderDefinitions(report),
    );
  }

  function renderHeading(report) {
    const meta = report.metadata;
    return el("div", { class: "report-heading" },
      el("h2", { id: "report-heading", tabindex: -1 }, t("reports.heading", { date: report.date, place: placeName(report) })),
      el("p", { class: "muted" },
        t("reports.generated", { at: localTime(report.generated_at, report.timezone), zone: report.timezone }), " · ",
        t("reports.thresholds", {
          sl: duration(meta.service_level_s), short: duration(meta.short_abandon_s), target: share(meta.service_level_target),
        })));
  }

  function renderTiles(city) {
    const definitions = definitionsOf("summary");
    const tiles = el("dl", { id: "report-tiles", class: "report-tiles" },
      TILES.map((key) => el("div", { class: "report-tile", dataset: { key }, title: definitions[key].definition },
        el("dt", {}, label(definitions[key])),
        el("dd", {}, format(city[key], definitions[key].unit)))));
    const every = el("table", { id: "report-figures", class: "report-table" },
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, t("reports.figure")), el("th", { scope: "col", class: "num" }, t("reports.value")),
        el("th", { scope: "col" }, t("reports.definition")))),
      el("tbody", {}, Object.entries(definitions).filter(([key]) => key !== "code" && key !== "name").map(([key, definition]) =>
        el("tr", { dataset: { key } },
          el("th", { scope: "row" }, label(definition)),
          el("td", { class: "num" }, format(city[key], definition.unit)),
          el("td", { class: "muted" }, definition.definition)))));
    return section("report-summary", `${t("reports.part.summary")} · ${rowName(city)}`,
      tiles,
      el("details", { class: "report-more" }, el("summary", {}, t("reports.all_figures")), scroller(t("reports.all_figures"), every)));
  }

  function renderSummaryTable(report) {
    const keys = state.allColumns
      ? Object.keys(definitionsOf("summary")).filter((key) => key !== "code" && key !== "name")
      : KEY_COLUMNS;
    const toggle = el("button", { type: "button", id: "report-columns", class: "small", "aria-pressed": String(state.allColumns) },
      state.allColumns ? t("reports.show_key") : t("reports.show_all"));
    toggle.addEventListener("click", () => {
      state.allColumns = !state.allColumns;
      render();
      document.getElementById("report-columns")?.focus();
    });
    const row = (city, total) => {
      let name = rowName(city);
      if (!total) {
        name = el("button", { type: "button", class: "link", "aria-label": t("reports.open_city", { city: rowName(city) }) }, rowName(city));
        name.addEventListener("click", () => {
          scope.value = city.code;
          state.focusAfter = true;
          load();
        });
      }
      // The code goes under the name: one column fewer, so the key figures fit the page.
      return el("tr", { class: total ? "total" : null, dataset: { code: city.code ?? "province" } },
        el("th", { scope: "row" }, name, city.code ? el("small", { class: "city-code" }, city.code) : null),
        keys.map((key) => valueCell("summary", key, city[key])));
    };
    const table = el("table", { id: "summary-table", class: "report-table" },
      el("thead", {}, el("tr", {}, headerCell("summary", "name"), keys.map((key) => headerCell("summary", key)))),
      el("tbody", {}, row(report.province, true), report.cities.map((city) => row(city, false))));
    return section("report-summary", t("reports.part.summary"),
      el("div", { class: "report-tools" }, toggle), scroller(t("reports.part.summary"), table));
  }

  function renderHelpers(report) {
    const rows = (report.province ?? report.cities[0]).helpers;
    const keys = Object.keys(definitionsOf("helpers")).filter((key) =>
      key !== "host" && key !== "code" && (report.province || key !== "host_name"));
    const cell = (helper, key) => {
      if (key === "host_name") return el("td", {}, cityName(helper.host, lang()));
      if (key === "name") return el("th", { scope: "row" }, cityName(helper.code, lang()));
      return valueCell("helpers", key, helper[key]);
    };
    const body = rows.length
      ? scroller(t("reports.part.helpers"), el("table", { id: "helpers-table", class: "report-table" },
        el("thead", {}, el("tr", {}, keys.map((key) => headerCell("helpers", key)))),
        el("tbody", {}, rows.map((helper) => el("tr", { dataset: { host: helper.host, code: helper.code } }, keys.map((key) => cell(helper, key)))))))
      : el("p", { id: "helpers-none", class: "muted" }, t("reports.no_helpers"));
    return section("report-helpers", t("reports.part.helpers"), body);
  }

  function renderHourly(place) {
    const definitions = definitionsOf("hourly");
    const labels = place.hourly.map((hour) => hourLabel(hour.hour));
    const figure = chart({
      title: `${t("reports.hourly_chart")} · ${rowName(place)}`,
      labels,
      series: HOURLY_SERIES.map((key) => ({ name: label(definitions[key]), values: place.hourly.map((hour) => hour[key]) })),
      kind: "line",
    });
    const keys = Object.keys(definitions).filter((key) => key !== "code" && key !== "hour");
    const table = el("table", { id: "hourly-table", class: "report-table" },
      el("thead", {}, el("tr", {}, headerCell("hourly", "hour"), keys.map((key) => headerCell("hourly", key)))),
      el("tbody", {}, place.hourly.map((hour) => el("tr", { dataset: { hour: hourLabel(hour.hour) } },
        el("th", { scope: "row" }, hourLabel(hour.hour)),
        keys.map((key) => valueCell("hourly", key, hour[key]))))));
    return section("report-hourly", `${t("reports.part.hourly")} · ${rowName(place)}`,
      el("figure", { id: "hourly-chart", class: "report-chart" }, figure),
      el("details", { class: "report-more", open: true }, el("summary", {}, t("reports.hourly_table")), scroller(t("reports.hourly_table"), table)));
  }

  function renderStaffing(report) {
    const title = t("reports.part.staffing");
    if (report.province) return section("report-staffing", title, renderStaffingByCity(report));
    const city = report.cities[0];
    const staffing = city.staffing;
    if (!staffing) return section("report-staffing", title, el("p", { class: "muted" }, t("reports.no_staffing")));
    const definitions = definitionsOf("staffing");
    const method = staffing.method === "erlang_a"
      ? t("reports.erlang_a", { patience: format(staffing.patience_s, "seconds") })
      : t("reports.erlang_c");
    const facts = [
      ["for_date", staffing.for_date],
      ["method", method],
      ["staffing_aht", duration(staffing.aht_s)],
      ["target", t("reports.target_value", { share: share(staffing.target), within: duration(staffing.within_s) })],
      ["own_agents", number(staffing.own_agents)],
      ["peak_agents_needed", number(staffing.peak_agents_needed)],
      ["peak_helper_seats", number(staffing.peak_helper_seats)],
      ["agent_hours_needed", t("reports.agent_hours", { n: number(staffing.agent_hours_needed) })],
      ["helper_seat_hours", t("reports.agent_hours", { n: number(staffing.helper_seat_hours) })],
    ];
    const figure = chart({
      title: t("reports.staffing_chart", { date: staffing.for_date }),
      labels: staffing.hours.map((hour) => hourLabel(hour.hour)),
      series: ["agents_needed", "own_agents"].map((key) => ({
        name: label(definitions[key]), values: staffing.hours.map((hour) => hour[key]), labelled: key === "agents_needed",
      })),
      kind: "bar",
    });
    const keys = Object.keys(definitions).filter((key) => key !== "code" && key !== "hour");
    const table = el("table", { id: "staffing-table", class: "report-table" },
      el("thead", {}, el("tr", {}, headerCell("staffing", "hour"), keys.map((key) => headerCell("staffing", key)))),
      el("tbody", {}, staffing.hours.map((hour) => el("tr", { class: hour.helper_seats > 0 ? "short" : null, dataset: { hour: hourLabel(hour.hour) } },
        el("th", { scope: "row" }, hourLabel(hour.hour)),
        keys.map((key) => valueCell("staffing", key, hour[key]))))));
    return section("report-staffing", `${title} · ${rowName(city)}`,
      el("dl", { id: "staffing-facts", class: "report-facts" },
        facts.map(([key, value]) => el("div", { class: peakClass(key, staffing), dataset: { key } }, el("dt", {}, t(`reports.${key}`)), el("dd", {}, value)))),
      el("figure", { id: "staffing-chart", class: "report-chart" }, figure),
      el("details", { class: "report-more" }, el("summary", {}, t("reports.staffing_table")), scroller(t("reports.staffing_table"), table)));
  }

  function peakClass(key, staffing) {
    return (key === "peak_helper_seats" || key === "helper_seat_hours") && staffing.peak_helper_seats > 0 ? "short" : null;
  }

  function renderStaffingByCity(report) {
    const cities = report.cities.filter((city) => city.staffing);
    const figure = chart({
      title: t("reports.staffing_cities"),
      labels: cities.map(rowName),
      series: [
        { name: t("reports.peak_agents_needed"), values: cities.map((city) => city.staffing.peak_agents_needed), labelled: true },
        { name: t("reports.own_agents"), values: cities.map((city) => city.staffing.own_agents) },
      ],
      kind: "bar",
    });
    const columns = ["method", "peak_agents_needed", "own_agents", "peak_helper_seats", "agent_hours_needed", "helper_seat_hours"];
    const value = (staffing, key) => (key === "method" ? (staffing.method === "erlang_a" ? "Erlang A" : "Erlang C") : number(staffing[key]));
    const table = el("table", { id: "staffing-table", class: "report-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("reports.city")),
        columns.map((key) => el("th", { scope: "col", class: key === "method" ? null : "num" }, t(`reports.${key}`))))),
      el("tbody", {}, cities.map((city) => el("tr", { class: city.staffing.peak_helper_seats > 0 ? "short" : null, dataset: { code: city.code } },
        el("th", { scope: "row" }, rowName(city)),
        columns.map((key) => el("td", { class: key === "method" ? null : "num", dataset: { key } }, value(city.staffing, key)))))));
    return [
      el("p", { class: "muted" }, `${t("reports.for_date")}: ${cities[0]?.staffing.for_date ?? NONE}`),
      el("figure", { id: "staffing-chart", class: "report-chart" }, figure),
      scroller(t("reports.part.staffing"), table),
    ];
  }

  function renderDefinitions(report) {
    const definitions = report.metadata.definitions;
    return el("details", { id: "report-definitions", class: "card report-definitions" },
      el("summary", {}, t("reports.definitions")),
      PARTS.flatMap((part) => [
        el("h3", {}, t(`reports.part.${part}`)),
        el("dl", {}, Object.values(definitions[part]).flatMap((definition) => [
          el("dt", {}, label(definition), " ", el("span", { class: "muted", lang: lang() === "en" ? "zh-CN" : "en" }, lang() === "en" ? definition.zh : definition.en)),
          el("dd", { lang: "en" }, definition.definition),
        ])),
      ]),
      el("h3", {}, t("reports.notes")),
      el("ul", { lang: "en" }, report.metadata.notes.map((note) => el("li", {}, note))));
  }

  // --- language, start, cleanup --------------------------------------------------------------------
  onLanguage(() => {
    if (!state.mounted) return; // i18n keeps its listeners: this one goes quiet once the page is left
    fillScope();
    translate(view);
    render();
    sayAgain();
  });

  fillScope();
  if (!coordinator) scope.value = who.city;
  render();
  load();

  return () => {
    state.mounted = false;
    clearTimeout(state.timer);
    ledger.stop();
  };
}
