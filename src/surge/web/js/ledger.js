// The reciprocity ledger (互助台账) on the reports page: seat-hours each city lent each host over a
// range of days, what it got back, and its own service level while it lent. Labels, units and
// definitions come from the ledger's own metadata, as the daily report's do.
import { cityName, download as saveFile, el, get } from "./api.js";
import { add, language, messageLines, onLanguage, t } from "./i18n.js";

add({
  zh: {
    "ledger.title": "互助台账", "ledger.from": "起始日", "ledger.to": "截止日", "ledger.load": "汇总台账",
    "ledger.loading": "正在汇总台账…", "ledger.loaded": "已载入 {from} 至 {to} 的台账",
    "ledger.failed": "无法获取台账（{status} {code}）：{message}", "ledger.pick": "请选择开始和结束日期",
    "ledger.pairs": "城市互助", "ledger.cities": "城市收支", "ledger.none": "此期间没有城市之间的坐席互助。",
    "ledger.csv": "{part} CSV", "ledger.xlsx": "台账 XLSX", "ledger.downloaded": "已下载 {name}",
    "ledger.bound": "一次最多 {days} 天", "ledger.hours": "{n} 小时",
  },
  en: {
    "ledger.title": "Reciprocity ledger", "ledger.from": "From", "ledger.to": "To", "ledger.load": "Compile ledger",
    "ledger.loading": "Adding up the ledger…", "ledger.loaded": "Loaded the ledger of {from} to {to}",
    "ledger.failed": "The ledger could not be made ({status} {code}): {message}", "ledger.pick": "Choose both days",
    "ledger.pairs": "City pairs", "ledger.cities": "City balances", "ledger.none": "No city lent seats to another in this range.",
    "ledger.csv": "{part} CSV", "ledger.xlsx": "Ledger XLSX", "ledger.downloaded": "Downloaded {name}",
    "ledger.bound": "At most {days} days at a time", "ledger.hours": "{n} h",
  },
});

const NONE = "—";
const PARTS = ["pairs", "cities"];
const NAMES = { lender_name: "lender", host_name: "host", name: "code" };

const locale = () => (language() === "en" ? "en" : "zh-CN");

function format(value, unit) {
  if (value === null || value === undefined) return NONE;
  switch (unit) {
    case "share": return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(value);
    case "hours": return t("ledger.hours", { n: new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(value) });
    case "calls": return new Intl.NumberFormat(locale()).format(value);
    default: return String(value);
  }
}

// A card with its own range, tables and downloads; `day` is the report's default last day.
export function ledgerCard({ day }) {
  const state = { ledger: null, shown: null, loading: 0, mounted: true };
  const last = el("input", { id: "ledger-to", name: "to", type: "date", required: true, max: day });
  last.value = day;
  const first = el("input", { id: "ledger-from", name: "from", type: "date", required: true, max: day });
  first.value = new Date(Date.parse(`${day}T00:00:00Z`) - 6 * 86_400_000).toISOString().slice(0, 10);
  const status = el("p", { id: "ledger-status", class: "muted", role: "status", "aria-live": "polite" });
  const error = el("p", { id: "ledger-error", class: "report-error", role: "alert", hidden: true });
  const downloads = el("div", { id: "ledger-downloads", class: "report-downloads", role: "group", "aria-labelledby": "ledger-title" });
  const body = el("div", { id: "ledger-results" });
  const labelFrom = el("label", { for: "ledger-from" });
  const labelTo = el("label", { for: "ledger-to" });
  const button = el("button", { type: "submit", id: "ledger-load", class: "primary" });
  const title = el("h2", { id: "ledger-title" });
  const bound = el("p", { class: "muted" });
  const form = el("form", { class: "report-form", novalidate: true, "aria-labelledby": "ledger-title" },
    el("div", { class: "field" }, labelFrom, first),
    el("div", { class: "field" }, labelTo, last),
    button);
  const element = el("section", { id: "report-ledger", class: "card report-part", "aria-labelledby": "ledger-title" },
    title, form, bound, el("div", { class: "report-download-bar" }, downloads), status, error, body);

  // Messages are kept as functions of the language, so that the language switch rewords them.
  const { say, sayAgain } = messageLines(status, error);
  const describe = (failure) => (failure.code === "network" ? t("error.network")
    : t("ledger.failed", { status: failure.status, code: failure.code, message: failure.message }));

  async function load() {
    if (!first.value || !last.value) {
      say("error", () => t("ledger.pick"));
      return;
    }
    const asked = { from: first.value, to: last.value };
    const current = ++state.loading;
    say("status", () => t("ledger.loading"));
    try {
      const ledger = await get(`/reports/ledger?${new URLSearchParams(asked)}`);
      if (!state.mounted || current !== state.loading) return;
      state.ledger = ledger;
      state.shown = asked;
      say("error", null);
      say("status", () => t("ledger.loaded", asked));
    } catch (failure) {
      if (!state.mounted || current !== state.loading) return;
      state.ledger = null;
      state.shown = null;
      say("status", null);
      say("error", () => describe(failure));
    }
    render();
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });

  async function download(made, params, fallback) {
    const search = new URLSearchParams({ ...state.shown, ...params, lang: language() });
    made.disabled = true;
    try {
      const name = await saveFile(`/reports/ledger?${search}`, fallback);
      say("status", () => t("ledger.downloaded", { name }));
      say("error", null);
    } catch (failure) {
      say("error", () => describe(failure));
    } finally {
      made.disabled = !state.ledger;
    }
  }

  function table(part, rows) {
    const definitions = state.ledger.metadata.definitions[part];
    const label = (definition) => (language() === "en" ? definition.en : definition.zh);
    const keys = Object.keys(definitions).filter((key) => !Object.values(NAMES).includes(key));
    const cell = (row, key) => {
      const definition = definitions[key];
      if (key in NAMES) return el("th", { scope: "row" }, cityName(row[NAMES[key]], language()));
      return el("td", { class: "num", dataset: { key } }, format(row[key], definition.unit));
    };
    return el("div", { class: "table-scroll", role: "region", tabindex: 0, "aria-label": t(`ledger.${part}`) },
      el("table", { id: `ledger-${part}`, class: "report-table" },
        el("thead", {}, el("tr", {}, keys.map((key) => el("th", {
          scope: "col", class: key in NAMES ? null : "num", title: definitions[key].definition,
        }, label(definitions[key]))))),
        el("tbody", {}, rows.map((row) => el("tr", {
          dataset: part === "pairs" ? { lender: row.lender, host: row.host } : { code: row.code },
        }, keys.map((key) => cell(row, key)))))));
  }

  function render() {
    title.textContent = t("ledger.title");
    labelFrom.textContent = t("ledger.from");
    labelTo.textContent = t("ledger.to");
    button.textContent = t("ledger.load");
    const ledger = state.ledger;
    bound.textContent = t("ledger.bound", { days: ledger?.metadata.max_days ?? 92 });
    const shown = state.shown;
    const stem = shown ? `surge-ledger-${shown.from}-${shown.to}` : "";
    const downloadButton = (id, text, params, fallback) => {
      const made = el("button", { type: "button", id, disabled: !ledger }, text);
      made.addEventListener("click", () => download(made, params, fallback));
      return made;
    };
    downloads.replaceChildren(
      ...PARTS.map((part) => downloadButton(`ledger-csv-${part}`, t("ledger.csv", { part: t(`ledger.${part}`) }),
        { format: "csv", part }, `${stem}-${part}.csv`)),
      downloadButton("ledger-xlsx", t("ledger.xlsx"), { format: "xlsx" }, `${stem}.xlsx`));
    if (!ledger) {
      body.replaceChildren();
      return;
    }
    if (!ledger.pairs.length) {
      body.replaceChildren(el("p", { id: "ledger-none", class: "muted" }, t("ledger.none")));
      return;
    }
    body.replaceChildren(
      el("h3", {}, t("ledger.pairs")), table("pairs", ledger.pairs),
      el("h3", {}, t("ledger.cities")), table("cities", ledger.cities));
  }

  const quiet = onLanguage(() => {
    if (!state.mounted) return;
    render();
    sayAgain();
  });
  render();
  load();
  return {
    element,
    stop() {
      state.mounted = false;
      quiet();
    },
  };
}
