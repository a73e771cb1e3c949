// The city admin's console: edit and publish the city's answer-script book, the version history,
// a side-by-side diff of two versions, rollback, CSV/JSON import and export, who is behind, and the
// knowledge gaps agents raised (a publish may answer them).
import { ApiError, cityName, el, get, post, request } from "./api.js";
import { gapsPanel } from "./gaps.js";
import { add, language, onLanguage, reasonText, t } from "./i18n.js";

const FIELDS = ["key", "title", "question", "answer", "category_code", "tags"];
const KEY_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_ENTRIES = 5000;
const MAX_TAGS = 20;
const SHOWN_ROWS = 300; // a 5,000-entry book stays responsive: filter to find the rest
const POLL_MS = 15000;
const RETRY_MS = 3000; // a failed read of the categories is tried again after this

add({
  zh: {
    "admin.title": "答复口径管理", "admin.version": "第 {v} 版", "admin.none": "尚未发布",
    "admin.editor": "编辑口径", "admin.based_on": "基于第 {v} 版编辑", "admin.filter": "筛选条目",
    "admin.add": "新增口径", "admin.new_entry": "新增口径", "admin.edit_entry": "编辑口径 {key}",
    "admin.key": "键", "admin.key_help": "字母、数字及 . _ -，最长 64 位；发布后不可更改",
    "admin.entry_title": "标题", "admin.question": "问题", "admin.answer": "答复口径",
    "admin.category": "诉求分类", "admin.pick": "请选择", "admin.tags": "标签",
    "admin.tags_help": "用分号、逗号或顿号分隔，最多 20 个", "admin.save_entry": "保存条目", "admin.cancel": "取消",
    "admin.status": "状态", "admin.actions": "操作", "admin.s_added": "新增", "admin.s_changed": "已修改",
    "admin.s_removed": "将删除", "admin.s_same": "未改",
    "admin.edit": "编辑", "admin.remove": "删除", "admin.undo_edit": "撤销修改", "admin.undo_remove": "撤销删除",
    "admin.edit_label": "编辑 {key}", "admin.remove_label": "删除 {key}",
    "admin.undo_edit_label": "撤销对 {key} 的修改", "admin.undo_remove_label": "撤销删除 {key}",
    "admin.empty": "口径本为空，点击“新增口径”开始", "admin.no_match": "没有符合筛选的条目",
    "admin.more": "仅显示前 {n} 条（共 {total} 条），请用筛选查找其余条目",
    "admin.pending": "未发布的修改：新增 {a}，修改 {c}，删除 {r}", "admin.clean": "没有未发布的修改",
    "admin.note": "发布说明", "admin.publish": "发布新版本", "admin.discard": "放弃修改",
    "admin.required": "必读版本（坐席确认阅读前暂不分配本市来电）",
    "admin.nothing": "没有需要发布的修改", "admin.finish_entry": "请先保存或取消正在编辑的条目",
    "admin.published": "已发布第 {v} 版（{n} 条）", "admin.discarded": "已放弃未发布的修改",
    "admin.restored": "已恢复上次未发布的修改", "admin.rebased": "已载入第 {v} 版，并重新应用了您的 {n} 处修改",
    "admin.conflicts": "以下条目他人也改过，已以您的修改为准，请核对：{keys}",
    "admin.newer": "{author} 已发布第 {v} 版，您正在基于第 {base} 版编辑", "admin.rebase": "载入最新版本并保留我的修改",
    "admin.err.key": "键只能包含字母、数字及 . _ -，且以字母或数字开头，最长 64 位",
    "admin.err.duplicate": "键 {key} 已存在", "admin.err.required": "请填写{field}",
    "admin.err.too_many_tags": "标签最多 20 个，每个最长 32 字", "admin.err.full": "口径本最多 5000 条",
    "admin.err.stale": "发布被拒绝：在您编辑期间有人发布了新版本。",
    "admin.err.category": "发布被拒绝：有条目的诉求分类代码不存在。",
    "admin.err.gap": "发布被拒绝：勾选的口径缺口已被答复或不属于本市，请刷新后重试。",
    "admin.err.invalid": "内容不符合要求：", "admin.err.too_large": "文件或口径本太大：",
    "admin.err.forbidden": "无权执行此操作：", "admin.err.not_found": "未找到：", "admin.err.other": "操作失败（{status}）：",
    "admin.history": "版本历史", "admin.col_version": "版本", "admin.author": "发布人", "admin.time": "时间",
    "admin.col_note": "说明", "admin.count": "条目数", "admin.current": "当前", "admin.rolled_back": "回滚自第 {v} 版",
    "admin.view": "查看", "admin.view_label": "查看第 {v} 版", "admin.compare_prev": "对比上一版",
    "admin.compare_label": "对比第 {a} 版与第 {b} 版", "admin.rollback": "回滚", "admin.rollback_label": "回滚到第 {v} 版",
    "admin.no_versions": "还没有发布过任何版本",
    "admin.viewing": "第 {v} 版内容", "admin.close": "关闭", "admin.meta": "{author} · {time} · {n} 条",
    "admin.diff": "版本对比", "admin.from": "旧版本", "admin.to": "新版本", "admin.compare": "对比",
    "admin.diff_summary": "第 {a} 版 → 第 {b} 版：新增 {added}，删除 {removed}，修改 {changed}",
    "admin.diff_same": "第 {a} 版与第 {b} 版内容相同", "admin.field": "字段", "admin.need_two": "至少需要两个版本才能对比",
    "admin.f.key": "键", "admin.f.title": "标题", "admin.f.question": "问题", "admin.f.answer": "答复口径",
    "admin.f.category_code": "诉求分类", "admin.f.tags": "标签", "admin.absent": "（无）",
    "admin.rollback_title": "回滚到第 {v} 版？",
    "admin.rollback_text": "第 {v} 版的内容将发布为新的第 {next} 版，历史版本不会被改写，坐席会立即收到更新。",
    "admin.rollback_dirty": "注意：编辑器中 {n} 处未发布的修改将被丢弃。", "admin.rollback_note": "回滚说明（可选）",
    "admin.confirm_rollback": "确认回滚",
    "admin.import_default": "从文件 {name} 导入", "admin.rolled": "已回滚：第 {from} 版的内容发布为第 {v} 版",
    "admin.transfer": "导入与导出", "admin.export": "导出", "admin.export_version": "导出版本",
    "admin.export_csv": "导出 CSV", "admin.export_json": "导出 JSON", "admin.exported": "已下载 {name}",
    "admin.import": "导入", "admin.import_file": "口径文件（CSV 或 JSON）", "admin.import_format": "文件格式",
    "admin.import_note": "导入说明（可选）", "admin.import_submit": "导入并发布",
    "admin.import_help": "CSV 列：key,title,question,answer,category_code,tags（标签以 ; 分隔，UTF-8 编码）。导入将以文件内容整体发布为新版本。",
    "admin.import_dirty": "编辑器中有未发布的修改；导入会以文件内容发布新版本，这些修改将被丢弃。再次点击“导入并发布”确认。",
    "admin.pick_file": "请选择要导入的文件", "admin.imported": "已导入 {n} 条，发布为第 {v} 版",
    "admin.adoption": "坐席版本", "admin.refresh": "刷新", "admin.serving": "在线服务本市的坐席：{n} 人",
    "admin.on_version": "第 {v} 版：{n} 人", "admin.unacked": "尚未确认：{n} 人", "admin.behind": "未更新到最新版",
    "admin.all_current": "所有在线坐席均已使用最新版本", "admin.loading": "正在加载…", "admin.load_failed": "加载失败：",
  },
  en: {
    "admin.title": "Answer scripts", "admin.version": "version {v}", "admin.none": "nothing published",
    "admin.editor": "Edit the script book", "admin.based_on": "editing from version {v}", "admin.filter": "Filter entries",
    "admin.add": "Add an entry", "admin.new_entry": "New entry", "admin.edit_entry": "Edit entry {key}",
    "admin.key": "Key", "admin.key_help": "letters, digits and . _ -, up to 64; it cannot change once published",
    "admin.entry_title": "Title", "admin.question": "Question", "admin.answer": "Answer",
    "admin.category": "Category", "admin.pick": "Choose", "admin.tags": "Tags",
    "admin.tags_help": "separated by semicolons or commas, at most 20", "admin.save_entry": "Save entry", "admin.cancel": "Cancel",
    "admin.status": "Status", "admin.actions": "Actions", "admin.s_added": "new", "admin.s_changed": "edited",
    "admin.s_removed": "to be removed", "admin.s_same": "unchanged",
    "admin.edit": "Edit", "admin.remove": "Remove", "admin.undo_edit": "Undo edit", "admin.undo_remove": "Undo removal",
    "admin.edit_label": "Edit {key}", "admin.remove_label": "Remove {key}",
    "admin.undo_edit_label": "Undo the edit of {key}", "admin.undo_remove_label": "Undo the removal of {key}",
    "admin.empty": "The book is empty: add an entry to start", "admin.no_match": "No entry matches the filter",
    "admin.more": "Showing the first {n} of {total} entries; filter to find the others",
    "admin.pending": "Unpublished changes: {a} added, {c} edited, {r} removed", "admin.clean": "No unpublished changes",
    "admin.note": "Release note", "admin.publish": "Publish a new version", "admin.discard": "Discard changes",
    "admin.required": "Required reading (agents get no more of this city's calls until they have read it)",
    "admin.nothing": "There is nothing to publish", "admin.finish_entry": "Save or cancel the entry you are editing first",
    "admin.published": "Published version {v} ({n} entries)", "admin.discarded": "Unpublished changes discarded",
    "admin.restored": "Your unpublished changes were restored", "admin.rebased": "Loaded version {v} and re-applied your {n} changes",
    "admin.conflicts": "Someone else also changed these entries; yours were kept, please check: {keys}",
    "admin.newer": "{author} published version {v}; you are editing from version {base}", "admin.rebase": "Load the latest and keep my changes",
    "admin.err.key": "A key has letters, digits and . _ -, starts with a letter or digit, at most 64 long",
    "admin.err.duplicate": "The key {key} is already used", "admin.err.required": "Fill in: {field}",
    "admin.err.too_many_tags": "At most 20 tags of up to 32 characters", "admin.err.full": "A book has at most 5,000 entries",
    "admin.err.stale": "Not published: someone published a new version since you started editing.",
    "admin.err.category": "Not published: an entry's category code does not exist.",
    "admin.err.gap": "Not published: a knowledge gap you ticked was answered already or is not this city's; reload and retry.",
    "admin.err.invalid": "The content is not valid:", "admin.err.too_large": "Too large:",
    "admin.err.forbidden": "Not allowed:", "admin.err.not_found": "Not found:", "admin.err.other": "It failed ({status}):",
    "admin.history": "Version history", "admin.col_version": "Version", "admin.author": "Author", "admin.time": "Time",
    "admin.col_note": "Note", "admin.count": "Entries", "admin.current": "current", "admin.rolled_back": "rollback of version {v}",
    "admin.view": "View", "admin.view_label": "View version {v}", "admin.compare_prev": "Compare with previous",
    "admin.compare_label": "Compare version {a} with version {b}", "admin.rollback": "Roll back", "admin.rollback_label": "Roll back to version {v}",
    "admin.no_versions": "No version has been published yet",
    "admin.viewing": "Version {v}", "admin.close": "Close", "admin.meta": "{author} · {time} · {n} entries",
    "admin.diff": "Compare versions", "admin.from": "Old version", "admin.to": "New version", "admin.compare": "Compare",
    "admin.diff_summary": "Version {a} → {b}: {added} added, {removed} removed, {changed} changed",
    "admin.diff_same": "Versions {a} and {b} have the same content", "admin.field": "Field", "admin.need_two": "Two versions are needed to compare",
    "admin.f.key": "Key", "admin.f.title": "Title", "admin.f.question": "Question", "admin.f.answer": "Answer",
    "admin.f.category_code": "Category", "admin.f.tags": "Tags", "admin.absent": "(none)",
    "admin.rollback_title": "Roll back to version {v}?",
    "admin.rollback_text": "Version {v}'s content will be published as the new version {next}; history is kept and agents get the update at once.",
    "admin.rollback_dirty": "Your {n} unpublished changes in the editor will be discarded.", "admin.rollback_note": "Note (optional)",
    "admin.confirm_rollback": "Roll back",
    "admin.import_default": "imported from {name}", "admin.rolled": "Rolled back: version {from}'s content is now version {v}",
    "admin.transfer": "Import and export", "admin.export": "Export", "admin.export_version": "Version to export",
    "admin.export_csv": "Export CSV", "admin.export_json": "Export JSON", "admin.exported": "Downloaded {name}",
    "admin.import": "Import", "admin.import_file": "Script file (CSV or JSON)", "admin.import_format": "File format",
    "admin.import_note": "Note (optional)", "admin.import_submit": "Import and publish",
    "admin.import_help": "CSV columns: key,title,question,answer,category_code,tags (tags separated by ;, UTF-8). The file's content is published as a whole new version.",
    "admin.import_dirty": "You have unpublished changes; importing publishes the file instead and discards them. Press “Import and publish” again to confirm.",
    "admin.pick_file": "Choose a file to import", "admin.imported": "Imported {n} entries as version {v}",
    "admin.adoption": "Agents' versions", "admin.refresh": "Refresh", "admin.serving": "Agents online serving the city: {n}",
    "admin.on_version": "version {v}: {n}", "admin.unacked": "not acknowledged yet: {n}", "admin.behind": "Not on the latest version",
    "admin.all_current": "Every connected agent has the latest version", "admin.loading": "Loading…", "admin.load_failed": "Could not load:",
  },
});

const STYLESHEET = new URL("../css/admin.css", import.meta.url).href;

function addStylesheet() {
  if (document.querySelector("link[data-page='admin']")) return;
  document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET, "data-page": "admin" }));
}

// A version's note: the service's own (a rollback without a note) in the page's language.
const noteOf = (version) => (version.note_code ? reasonText(version.note_code, version.note) : version.note || "");

// --- entries --------------------------------------------------------------------------------
function normalised(entry) {
  return {
    key: entry.key, title: entry.title, question: entry.question, answer: entry.answer,
    category_code: entry.category_code, tags: [...(entry.tags || [])],
  };
}

function fieldText(entry, field) {
  if (!entry) return "";
  return field === "tags" ? entry.tags.join("; ") : String(entry[field] ?? "");
}

function same(a, b) {
  return FIELDS.every((field) => fieldText(a, field) === fieldText(b, field));
}

function parseTags(text) {
  const tags = text.split(/[;,；，、]/).map((tag) => tag.trim()).filter(Boolean);
  return [...new Set(tags)];
}

// What the draft changes relative to its base, by key.
function changesBetween(baseEntries, draftEntries) {
  const before = new Map(baseEntries.map((entry) => [entry.key, entry]));
  const after = new Map(draftEntries.map((entry) => [entry.key, entry]));
  const added = [];
  const changed = [];
  const removed = [];
  for (const [key, entry] of after) {
    if (!before.has(key)) added.push(key);
    else if (!same(before.get(key), entry)) changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) removed.push(key);
  return { added, changed, removed, count: added.length + changed.length + removed.length };
}

// Re-apply the edits made on `oldBase` to `latest`; report the keys someone else changed too.
function rebase(oldBase, draft, latest) {
  const mine = changesBetween(oldBase, draft);
  const before = new Map(oldBase.map((entry) => [entry.key, entry]));
  const ours = new Map(draft.map((entry) => [entry.key, entry]));
  const theirs = new Map(latest.map((entry) => [entry.key, entry]));
  const conflicts = [];
  for (const key of [...mine.added, ...mine.changed, ...mine.removed]) {
    const base = before.get(key);
    const now = theirs.get(key);
    if ((base || now) && !(base && now && same(base, now))) conflicts.push(key);
  }
  const result = latest.filter((entry) => !mine.removed.includes(entry.key))
    .map((entry) => (ours.has(entry.key) && (mine.changed.includes(entry.key) || mine.added.includes(entry.key))
      ? normalised(ours.get(entry.key)) : entry));
  const present = new Set(result.map((entry) => entry.key));
  for (const key of [...mine.changed, ...mine.added]) if (!present.has(key)) result.push(normalised(ours.get(key)));
  return { entries: result, applied: mine.count, conflicts };
}

// The changed middle of two texts (common prefix and suffix kept), by code point.
function changedMiddle(oldText, newText) {
  const a = Array.from(oldText);
  const b = Array.from(newText);
  let start = 0;
  const shortest = Math.min(a.length, b.length);
  while (start < shortest && a[start] === b[start]) start++;
  let end = 0;
  while (end < shortest - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const split = (chars) => [chars.slice(0, start).join(""), chars.slice(start, chars.length - end).join(""), chars.slice(chars.length - end).join("")];
  return [split(a), split(b)];
}

// --- HTTP beyond api.js ---------------------------------------------------------------------
function upload(path, file, contentType) {
  return request("POST", path, file, { contentType });
}

function attachmentName(header) {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header || "");
  return match ? decodeURIComponent(match[1]) : null;
}

// An error from the API, shown with a sentence for what it means and the server's own words.
function showError(target, error) {
  const leads = {
    stale_version: "admin.err.stale", unknown_category: "admin.err.category", invalid_request: "admin.err.invalid",
    unknown_gap: "admin.err.gap", gap_answered: "admin.err.gap",
    payload_too_large: "admin.err.too_large", forbidden: "admin.err.forbidden", not_found: "admin.err.not_found",
  };
  target.hidden = false;
  if (!(error instanceof ApiError)) {
    target.replaceChildren(el("span", { class: "detail" }, String(error.message || error)));
    return;
  }
  if (error.code === "network") {
    target.replaceChildren(el("span", { class: "detail" }, t("error.network")));
    return;
  }
  const lead = leads[error.code] || (error.status === 422 || error.status === 400 ? "admin.err.invalid" : "admin.err.other");
  target.replaceChildren(
    el("strong", {}, t(lead, { status: error.status })), " ",
    el("span", { class: "detail" }, error.message), " ",
    el("code", { class: "code" }, `${error.status} ${error.code}`),
  );
}

function clearError(target) {
  target.replaceChildren();
  target.hidden = true;
}

export function mount(view, { who, banner }) {
  addStylesheet();
  const city = who.city;
  const base = `/cities/${city}/scripts`;
  const draftKey = `surge.admin.draft.${city}.${who.username}`;
  const state = {
    alive: true,
    book: null, // the version the edit started from: {version, entries, ...}
    draft: [], // the entries as edited
    editing: null, // {key|null, trigger} while the entry form is open
    versions: [],
    categories: [],
    filter: "",
    importArmed: false,
    diffFrom: null,
    diffTo: null,
    exportChoice: null, // null: the current version
    shownDiff: null, // the diff on screen, kept to redraw it in the other language
    shownVersion: null, // the version on screen
    seen: "", // the version list last rendered
  };
  const lang = () => language();
  const when = (iso) => new Date(iso).toLocaleString(lang() === "en" ? "en-GB" : "zh-CN", { dateStyle: "short", timeStyle: "medium" });
  const categoryName = (code) => {
    const found = state.categories.find((c) => c.code === code);
    if (!found) return code;
    return `${code} ${lang() === "en" && found.name_en ? found.name_en : found.name}`;
  };

  // --- the page's frame -------------------------------------------------------------------------
  const badge = el("span", { id: "book-version", class: "pill" });
  const title = el("h1", { id: "admin-title" }, el("span", { "data-i18n": "admin.title" }), " · ",
    el("span", { id: "admin-city" }), " ", badge);
  const newer = el("div", { id: "newer-version", class: "notice warn", role: "status", hidden: true });

  // The editor
  const basedOn = el("span", { id: "based-on", class: "muted" });
  const filter = el("input", { id: "entry-filter", type: "search", autocomplete: "off" });
  const addButton = el("button", { type: "button", id: "add-entry", class: "primary", "data-i18n": "admin.add" });
  const form = buildEntryForm();
  const table = el("table", { id: "book-entries", class: "book" });
  const more = el("p", { id: "book-more", class: "muted", hidden: true });
  const summary = el("p", { id: "draft-summary", role: "status" });
  const note = el("input", { id: "publish-note", name: "note", maxlength: 1000, autocomplete: "off" });
  const publishButton = el("button", { type: "submit", id: "publish", class: "primary", "data-i18n": "admin.publish" });
  const required = el("input", { type: "checkbox", id: "publish-required", name: "required" });
  const discardButton = el("button", { type: "button", id: "discard", "data-i18n": "admin.discard" });
  const publishError = el("div", { id: "publish-error", class: "alert", role: "alert", hidden: true });
  const publishForm = el("form", { id: "publish-form", class: "publish" },
    el("label", { for: "publish-note", "data-i18n": "admin.note" }), note,
    el("label", { class: "check" }, required, " ", el("span", { "data-i18n": "admin.required" })),
    el("div", { class: "actions" }, publishButton, discardButton),
    publishError);
  const editor = el("section", { id: "editor", class: "card", "aria-labelledby": "editor-title" },
    el("h2", { id: "editor-title" }, el("span", { "data-i18n": "admin.editor" }), " ", basedOn),
    el("div", { class: "toolbar" },
      el("label", { for: "entry-filter", "data-i18n": "admin.filter" }), filter, el("span", { class: "spacer" }), addButton),
    form.root, summary, table, more, publishForm);

  // The history, the agents' versions, import and export
  const history = el("section", { id: "history", class: "card", "aria-labelledby": "history-title" },
    el("h2", { id: "history-title", "data-i18n": "admin.history" }));
  const historyBody = el("div", { class: "scroll" });
  history.append(historyBody);

  const adoption = el("section", { id: "adoption", class: "card", "aria-labelledby": "adoption-title" });
  const adoptionBody = el("div", { id: "adoption-body", "aria-live": "polite" });
  const adoptionRefresh = el("button", { type: "button", id: "adoption-refresh", class: "small", "data-i18n": "admin.refresh" });
  adoption.append(el("h2", { id: "adoption-title" }, el("span", { "data-i18n": "admin.adoption" }), " ", adoptionRefresh), adoptionBody);

  const transfer = buildTransfer();
  const gaps = gapsPanel(city);

  // The diff and a version's content
  const diffFrom = el("select", { id: "diff-from", name: "from" });
  const diffTo = el("select", { id: "diff-to", name: "to" });
  const compareButton = el("button", { type: "submit", id: "compare", class: "primary", "data-i18n": "admin.compare" });
  const diffResult = el("div", { id: "diff-result", "aria-live": "polite" });
  const diffForm = el("form", { class: "toolbar" },
    el("label", { for: "diff-from", "data-i18n": "admin.from" }), diffFrom,
    el("label", { for: "diff-to", "data-i18n": "admin.to" }), diffTo, compareButton);
  const diff = el("section", { id: "diff", class: "card", "aria-labelledby": "diff-title" },
    el("h2", { id: "diff-title", "data-i18n": "admin.diff" }), diffForm, diffResult);
  const versionView = el("section", { id: "version-view", class: "card", "aria-labelledby": "version-view-title", hidden: true });

  const dialog = buildRollbackDialog();

  view.append(el("div", { class: "admin-page" }, title, newer,
    el("div", { class: "admin-grid" }, editor, el("div", { class: "admin-side" }, gaps.root, transfer.root, adoption)),
    history, diff, versionView, dialog.root));

  // --- the entry form ---------------------------------------------------------------------------
  function buildEntryForm() {
    const heading = el("h3", { id: "entry-form-title", tabindex: "-1" });
    const key = el("input", { id: "entry-key", name: "key", required: true, maxlength: 64, autocomplete: "off",
      pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}", "aria-describedby": "entry-key-help", spellcheck: "false" });
    const entryTitle = el("input", { id: "entry-title", name: "title", required: true, maxlength: 200, autocomplete: "off" });
    const question = el("textarea", { id: "entry-question", name: "question", required: true, maxlength: 4000, rows: 2 });
    const answer = el("textarea", { id: "entry-answer", name: "answer", required: true, maxlength: 4000, rows: 5 });
    const category = el("select", { id: "entry-category", name: "category_code", required: true });
    const tags = el("input", { id: "entry-tags", name: "tags", autocomplete: "off", "aria-describedby": "entry-tags-help" });
    const error = el("div", { id: "entry-error", class: "alert", role: "alert", hidden: true });
    const root = el("form", { id: "entry-form", class: "entry-form card", "aria-labelledby": "entry-form-title", hidden: true },
      heading,
      el("div", { class: "field" }, el("label", { for: "entry-key", "data-i18n": "admin.key" }), key,
        el("small", { id: "entry-key-help", class: "muted", "data-i18n": "admin.key_help" })),
      el("div", { class: "field" }, el("label", { for: "entry-category", "data-i18n": "admin.category" }), category),
      el("div", { class: "field wide" }, el("label", { for: "entry-title", "data-i18n": "admin.entry_title" }), entryTitle),
      el("div", { class: "field wide" }, el("label", { for: "entry-question", "data-i18n": "admin.question" }), question),
      el("div", { class: "field wide" }, el("label", { for: "entry-answer", "data-i18n": "admin.answer" }), answer),
      el("div", { class: "field wide" }, el("label", { for: "entry-tags", "data-i18n": "admin.tags" }), tags,
        el("small", { id: "entry-tags-help", class: "muted", "data-i18n": "admin.tags_help" })),
      error,
      el("div", { class: "actions wide" },
        el("button", { type: "submit", id: "save-entry", class: "primary", "data-i18n": "admin.save_entry" }),
        el("button", { type: "button", id: "cancel-entry", "data-i18n": "admin.cancel" })));
    return { root, heading, key, title: entryTitle, question, answer, category, tags, error };
  }

  function fillCategories(select, chosen) {
    const groups = new Map();
    for (const c of state.categories) {
      if (!groups.has(c.parent)) groups.set(c.parent, { name: c.parent_name, items: [] });
      groups.get(c.parent).items.push(c);
    }
    select.replaceChildren(el("option", { value: "" }, t("admin.pick")),
      ...[...groups.entries()].map(([code, group]) => el("optgroup", { label: `${code} ${group.name}` },
        group.items.map((c) => el("option", { value: c.code }, categoryName(c.code))))));
    if (chosen && !state.categories.some((c) => c.code === chosen)) select.append(el("option", { value: chosen }, chosen));
    select.value = chosen || "";
  }

  // An open entry form's category list, filled again (the list arrived, or the language changed).
  function refillCategories() {
    if (!form.root.hidden && state.editing) fillCategories(form.category, form.category.value);
  }

  function openForm(key, trigger) {
    const entry = key === null ? null : state.draft.find((e) => e.key === key);
    const published = entry && state.book.entries.some((e) => e.key === key);
    state.editing = { key, trigger };
    form.heading.textContent = entry ? t("admin.edit_entry", { key }) : t("admin.new_entry");
    form.key.value = entry ? entry.key : "";
    form.key.readOnly = !!published; // a published key is stable across versions
    form.title.value = entry ? entry.title : "";
    form.question.value = entry ? entry.question : "";
    form.answer.value = entry ? entry.answer : "";
    form.tags.value = entry ? entry.tags.join("; ") : "";
    fillCategories(form.category, entry ? entry.category_code : "");
    clearError(form.error);
    form.root.hidden = false;
    (published ? form.title : form.key).focus();
  }

  function closeForm() {
    const trigger = state.editing && state.editing.trigger;
    state.editing = null;
    form.root.hidden = true;
    clearError(form.error);
    const again = trigger && trigger.isConnected ? trigger : addButton;
    again.focus();
  }

  form.root.addEventListener("submit", (event) => {
    event.preventDefault();
    const editingKey = state.editing ? state.editing.key : null;
    const entry = {
      key: form.key.value.trim(), title: form.title.value.trim(), question: form.question.value.trim(),
      answer: form.answer.value.trim(), category_code: form.category.value, tags: parseTags(form.tags.value),
    };
    const fail = (text, field) => {
      form.error.hidden = false;
      form.error.replaceChildren(text);
      if (field) field.focus();
    };
    if (!KEY_RULE.test(entry.key)) return fail(t("admin.err.key"), form.key);
    for (const [name, field, label] of [["title", form.title, "admin.entry_title"], ["question", form.question, "admin.question"],
      ["answer", form.answer, "admin.answer"], ["category_code", form.category, "admin.category"]]) {
      if (!entry[name]) return fail(t("admin.err.required", { field: t(label) }), field);
    }
    if (entry.tags.length > MAX_TAGS || entry.tags.some((tag) => tag.length > 32)) return fail(t("admin.err.too_many_tags"), form.tags);
    if (entry.key !== editingKey && state.draft.some((e) => e.key === entry.key)) {
      return fail(t("admin.err.duplicate", { key: entry.key }), form.key);
    }
    if (editingKey === null) {
      if (state.draft.length >= MAX_ENTRIES) return fail(t("admin.err.full"));
      const removedIndex = state.book.entries.findIndex((e) => e.key === entry.key);
      if (removedIndex >= 0) state.draft.splice(Math.min(removedIndex, state.draft.length), 0, entry);
      else state.draft.push(entry);
    } else {
      const index = state.draft.findIndex((e) => e.key === editingKey);
      state.draft[index] = entry;
    }
    if (state.editing) state.editing.trigger = null;
    draftChanged();
    closeForm();
    const row = table.querySelector(`tr[data-key="${CSS.escape(entry.key)}"] button.edit`);
    if (row) row.focus();
  });
  form.root.querySelector("#cancel-entry").addEventListener("click", closeForm);
  form.root.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      closeForm();
    }
  });
  addButton.addEventListener("click", () => openForm(null, addButton));

  // --- the draft --------------------------------------------------------------------------------
  function saveDraft() {
    const pending = changesBetween(state.book.entries, state.draft);
    if (pending.count) sessionStorage.setItem(draftKey, JSON.stringify({ base_version: state.book.version, entries: state.draft }));
    else sessionStorage.removeItem(draftKey);
  }

  function draftChanged() {
    saveDraft();
    renderEditor();
  }

  function setBook(book) {
    state.book = { ...book, entries: book.entries.map(normalised) };
    state.draft = state.book.entries.map(normalised);
    sessionStorage.removeItem(draftKey);
    newer.hidden = true;
  }

  function renderHeader() {
    document.getElementById("admin-city").textContent = cityName(city, lang());
    const version = state.book ? state.book.version : 0;
    badge.textContent = version ? t("admin.version", { v: version }) : t("admin.none");
    badge.dataset.version = version;
  }

  function renderEditor() {
    if (!state.book) return;
    renderHeader();
    basedOn.textContent = `(${t("admin.based_on", { v: state.book.version })})`;
    const pending = changesBetween(state.book.entries, state.draft);
    summary.textContent = pending.count
      ? t("admin.pending", { a: pending.added.length, c: pending.changed.length, r: pending.removed.length })
      : t("admin.clean");
    summary.className = pending.count ? "pending" : "muted";
    summary.dataset.pending = pending.count;

    const status = new Map();
    for (const key of pending.added) status.set(key, "added");
    for (const key of pending.changed) status.set(key, "changed");
    const rows = state.draft.map((entry) => ({ entry, status: status.get(entry.key) || "same" }));
    for (const entry of state.book.entries) if (pending.removed.includes(entry.key)) rows.push({ entry, status: "removed" });
    const query = state.filter.trim().toLowerCase();
    const matching = query
      ? rows.filter(({ entry }) => FIELDS.some((field) => fieldText(entry, field).toLowerCase().includes(query)))
      : rows;
    const shown = matching.slice(0, SHOWN_ROWS);
    table.replaceChildren(
      el("caption", { class: "visually-hidden" }, t("admin.editor")),
      el("thead", {}, el("tr", {},
        ["admin.key", "admin.entry_title", "admin.category", "admin.tags", "admin.status", "admin.actions"]
          .map((label) => el("th", { scope: "col" }, t(label))))),
      el("tbody", {}, shown.map(row)),
    );
    if (!matching.length) {
      table.tBodies[0].append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, t(rows.length ? "admin.no_match" : "admin.empty"))));
    }
    more.hidden = matching.length <= SHOWN_ROWS;
    more.textContent = t("admin.more", { n: SHOWN_ROWS, total: matching.length });
  }

  function row({ entry, status }) {
    const classes = { added: "diff-added", changed: "diff-changed", removed: "diff-removed", same: "" };
    const actions = el("td", { class: "row-actions" });
    const button = (label, aria, extra, handler) => {
      const b = el("button", { type: "button", class: `small ${extra}`, "aria-label": t(aria, { key: entry.key }) }, t(label));
      b.addEventListener("click", handler);
      return b;
    };
    if (status === "removed") {
      actions.append(button("admin.undo_remove", "admin.undo_remove_label", "undo", () => restore(entry.key)));
    } else {
      const edit = button("admin.edit", "admin.edit_label", "edit", () => openForm(entry.key, edit));
      actions.append(edit, button("admin.remove", "admin.remove_label", "remove", () => removeEntry(entry.key)));
      if (status === "changed") actions.append(button("admin.undo_edit", "admin.undo_edit_label", "undo", () => restore(entry.key)));
    }
    return el("tr", { class: classes[status] || null, dataset: { key: entry.key, status } },
      el("td", {}, el("code", {}, entry.key)),
      el("td", {}, el("div", { class: "entry-title" }, entry.title), el("div", { class: "muted clamp" }, entry.question)),
      el("td", {}, categoryName(entry.category_code)),
      el("td", {}, entry.tags.map((tag) => el("span", { class: "tag" }, tag))),
      el("td", {}, status === "same" ? el("span", { class: "muted" }, t("admin.s_same"))
        : el("span", { class: `pill status-${status}` }, t(`admin.s_${status}`))),
      actions);
  }

  function removeEntry(key) {
    if (state.editing && state.editing.key === key) closeForm();
    const index = state.draft.findIndex((e) => e.key === key);
    if (index >= 0) state.draft.splice(index, 1);
    draftChanged();
    const next = table.querySelector(`tr[data-key="${CSS.escape(key)}"] button`) || addButton;
    next.focus();
  }

  // Put an entry back as it was in the base version (undo an edit or a removal).
  function restore(key) {
    const original = state.book.entries.find((e) => e.key === key);
    if (!original) return;
    const index = state.draft.findIndex((e) => e.key === key);
    if (index >= 0) state.draft[index] = normalised(original);
    else {
      const baseIndex = state.book.entries.indexOf(original);
      state.draft.splice(Math.min(baseIndex, state.draft.length), 0, normalised(original));
    }
    draftChanged();
    const next = table.querySelector(`tr[data-key="${CSS.escape(key)}"] button.edit`);
    if (next) next.focus();
  }

  let filterTimer = null;
  filter.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.filter = filter.value;
      renderEditor();
    }, 150);
  });

  // --- publishing -------------------------------------------------------------------------------
  publishForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(publishError);
    if (state.editing) {
      publishError.hidden = false;
      publishError.replaceChildren(t("admin.finish_entry"));
      return;
    }
    if (!changesBetween(state.book.entries, state.draft).count) {
      publishError.hidden = false;
      publishError.replaceChildren(t("admin.nothing"));
      return;
    }
    publishButton.disabled = true;
    try {
      const answers = gaps.chosen();
      const published = await post(base, {
        entries: state.draft, note: note.value.trim() || null, base_version: state.book.version,
        required: required.checked,
        ...(answers.length ? { answers_gaps: answers } : {}),
      });
      if (!state.alive) return;
      note.value = "";
      required.checked = false;
      if (answers.length) gaps.reload();
      afterPublish(published, () => t("admin.published", { v: published.version, n: published.entry_count }));
    } catch (error) {
      if (!state.alive) return;
      showError(publishError, error);
      if (error.code === "stale_version") publishError.append(rebaseButton());
    } finally {
      publishButton.disabled = false;
    }
  });

  discardButton.addEventListener("click", () => {
    if (state.editing) closeForm();
    state.draft = state.book.entries.map(normalised);
    clearError(publishError);
    draftChanged();
    banner(() => t("admin.discarded"), "info");
  });

  function afterPublish(book, message) {
    setBook(book);
    if (state.editing) closeForm();
    clearError(publishError);
    renderEditor();
    banner(message, "ok");
    state.diffFrom = null; // the selects move on to the two newest versions
    state.diffTo = null;
    state.shownDiff = null;
    diffResult.replaceChildren();
    loadVersions();
    setTimeout(() => state.alive && loadAdoption(), 1500); // let the consoles acknowledge first
  }

  function rebaseButton() {
    const button = el("button", { type: "button", class: "rebase" }, t("admin.rebase"));
    button.addEventListener("click", () => rebaseOnLatest());
    return button;
  }

  // Load the newest version and re-apply this draft's edits on top of it.
  async function rebaseOnLatest(oldBase = state.book.entries, draft = state.draft) {
    try {
      const latest = await get(base);
      if (!state.alive) return;
      const merged = rebase(oldBase, draft, latest.entries.map(normalised));
      setBook(latest);
      state.draft = merged.entries;
      saveDraft();
      clearError(publishError);
      renderEditor();
      loadVersions();
      const text = () => t("admin.rebased", { v: latest.version, n: merged.applied });
      banner(merged.conflicts.length ? () => `${text()}. ${t("admin.conflicts", { keys: merged.conflicts.join(", ") })}` : text,
        merged.conflicts.length ? "warn" : "ok");
    } catch (error) {
      if (state.alive) showError(publishError, error);
    }
  }

  // --- history ----------------------------------------------------------------------------------
  async function loadVersions() {
    let found;
    try {
      found = await get(`${base}/versions`);
    } catch (error) {
      if (!state.alive) return;
      state.seen = "";
      historyBody.replaceChildren(el("p", { class: "error" }, t("admin.load_failed"), " ", error.message));
      return;
    }
    if (!state.alive) return;
    const seen = JSON.stringify(found);
    if (seen === state.seen) return noticeNewer(); // re-rendering would take the focus away
    state.seen = seen;
    state.versions = found;
    renderHistory();
    renderDiffChoices();
    renderTransfer();
    noticeNewer();
  }

  function noticeNewer() {
    const latest = state.versions[0];
    if (!state.book || !latest || latest.version <= state.book.version) {
      newer.hidden = true;
      return;
    }
    newer.hidden = false;
    newer.replaceChildren(t("admin.newer", { author: latest.author, v: latest.version, base: state.book.version }), " ", rebaseButton());
  }

  function renderHistory() {
    if (!state.versions.length) {
      historyBody.replaceChildren(el("p", { class: "muted" }, t("admin.no_versions")));
      return;
    }
    const current = state.versions[0].version;
    const versionsTable = el("table", { id: "versions", class: "versions" },
      el("caption", { class: "visually-hidden" }, t("admin.history")),
      el("thead", {}, el("tr", {}, ["admin.col_version", "admin.author", "admin.time", "admin.col_note", "admin.count", "admin.actions"]
        .map((label) => el("th", { scope: "col" }, t(label))))),
      el("tbody", {}, state.versions.map((v) => {
        const viewButton = el("button", { type: "button", class: "small view", "aria-label": t("admin.view_label", { v: v.version }) }, t("admin.view"));
        viewButton.addEventListener("click", () => showVersion(v.version));
        const actions = el("td", { class: "row-actions" }, viewButton);
        const previous = state.versions.find((other) => other.version < v.version);
        if (previous) {
          const compare = el("button", { type: "button", class: "small compare",
            "aria-label": t("admin.compare_label", { a: previous.version, b: v.version }) }, t("admin.compare_prev"));
          compare.addEventListener("click", () => {
            state.diffFrom = previous.version;
            state.diffTo = v.version;
            renderDiffChoices();
            showDiff(previous.version, v.version, true);
          });
          actions.append(compare);
        }
        if (v.version !== current) {
          const back = el("button", { type: "button", class: "small rollback", "aria-label": t("admin.rollback_label", { v: v.version }) }, t("admin.rollback"));
          back.addEventListener("click", () => dialog.open(v.version, back));
          actions.append(back);
        }
        return el("tr", { dataset: { version: v.version }, "aria-current": v.version === current ? "true" : null },
          el("th", { scope: "row" }, t("admin.version", { v: v.version }),
            v.version === current ? el("span", { class: "pill ok current" }, t("admin.current")) : null),
          el("td", {}, v.author),
          el("td", { class: "time" }, el("time", { datetime: v.created_at }, when(v.created_at))),
          el("td", { class: "note" }, noteOf(v),
            v.rolled_back_from ? el("span", { class: "pill rolled" }, t("admin.rolled_back", { v: v.rolled_back_from })) : null),
          el("td", { class: "number" }, String(v.entry_count)),
          actions);
      })));
    historyBody.replaceChildren(versionsTable);
  }

  async function showVersion(number) {
    versionView.hidden = false;
    versionView.replaceChildren(el("p", { class: "muted" }, t("admin.loading")));
    let book;
    try {
      book = await get(`${base}/versions/${number}`);
    } catch (error) {
      if (!state.alive) return;
      const problem = el("div", { class: "alert", role: "alert" });
      showError(problem, error);
      versionView.replaceChildren(problem);
      return;
    }
    if (!state.alive) return;
    state.shownVersion = book;
    renderVersion(true);
  }

  function renderVersion(focus) {
    const book = state.shownVersion;
    if (!book) return;
    const number = book.version;
    const close = el("button", { type: "button", id: "close-version", "data-i18n": "admin.close" }, t("admin.close"));
    close.addEventListener("click", () => {
      versionView.hidden = true;
      state.shownVersion = null;
      const back = historyBody.querySelector(`tr[data-version="${number}"] button.view`);
      if (back) back.focus();
    });
    const heading = el("h2", { id: "version-view-title", tabindex: "-1" }, t("admin.viewing", { v: book.version }));
    versionView.dataset.version = book.version;
    versionView.replaceChildren(
      el("div", { class: "toolbar" }, heading, el("span", { class: "spacer" }), close),
      el("p", { class: "muted" }, t("admin.meta", { author: book.author, time: when(book.created_at), n: book.entry_count }),
        book.note ? ` · ${noteOf(book)}` : ""),
      el("ol", { class: "entries" }, book.entries.map((entry) => el("li", { class: "entry", dataset: { key: entry.key } },
        el("h3", {}, entry.title, " ", el("small", {}, el("code", {}, entry.key), " · ", categoryName(entry.category_code))),
        el("p", { class: "question" }, entry.question),
        el("p", { class: "answer" }, entry.answer),
        entry.tags.length ? el("p", {}, entry.tags.map((tag) => el("span", { class: "tag" }, tag))) : null))),
    );
    if (focus) heading.focus();
  }

  // --- the diff ---------------------------------------------------------------------------------
  function renderDiffChoices() {
    const numbers = state.versions.map((v) => v.version);
    if (numbers.length && (state.diffTo === null || !numbers.includes(state.diffTo))) state.diffTo = numbers[0];
    if (numbers.length > 1 && (state.diffFrom === null || !numbers.includes(state.diffFrom))) state.diffFrom = numbers[1];
    for (const [select, chosen] of [[diffFrom, state.diffFrom], [diffTo, state.diffTo]]) {
      select.replaceChildren(...numbers.map((n) => el("option", { value: n }, t("admin.version", { v: n }))));
      if (chosen !== null) select.value = String(chosen);
    }
    compareButton.disabled = numbers.length < 2;
    if (numbers.length < 2 && !diffResult.querySelector("table")) {
      diffResult.replaceChildren(el("p", { class: "muted need-two" }, t("admin.need_two")));
    } else if (numbers.length >= 2 && diffResult.querySelector(".need-two")) diffResult.replaceChildren();
  }

  diffFrom.addEventListener("change", () => { state.diffFrom = Number(diffFrom.value); });
  diffTo.addEventListener("change", () => { state.diffTo = Number(diffTo.value); });
  diffForm.addEventListener("submit", (event) => {
    event.preventDefault();
    showDiff(Number(diffFrom.value), Number(diffTo.value), false);
  });

  async function showDiff(from, to, focus) {
    diffResult.replaceChildren(el("p", { class: "muted" }, t("admin.loading")));
    const entriesOf = (n) => (n === 0 ? Promise.resolve({ entries: [] }) : get(`${base}/versions/${n}`));
    let changes;
    let older;
    let newer_;
    try {
      [changes, older, newer_] = await Promise.all([get(`${base}/diff?from=${from}&to=${to}`), entriesOf(from), entriesOf(to)]);
    } catch (error) {
      if (!state.alive) return;
      const problem = el("div", { class: "alert", role: "alert" });
      showError(problem, error);
      diffResult.replaceChildren(problem);
      return;
    }
    if (!state.alive) return;
    state.shownDiff = { from, to, changes, older, newer: newer_ };
    renderDiff(focus);
  }

  function renderDiff(focus) {
    if (!state.shownDiff) return;
    const { from, to, changes, older, newer: newer_ } = state.shownDiff;
    const before = new Map(older.entries.map((e) => [e.key, normalised(e)]));
    const after = new Map(newer_.entries.map((e) => [e.key, normalised(e)]));
    const counts = { a: from, b: to, added: changes.added.length, removed: changes.removed.length, changed: changes.changed.length };
    const total = counts.added + counts.removed + counts.changed;
    const heading = el("p", { id: "diff-summary", tabindex: "-1", class: "diff-summary" },
      t(total ? "admin.diff_summary" : "admin.diff_same", counts));
    if (!total) {
      diffResult.replaceChildren(heading);
      if (focus) heading.focus();
      return;
    }
    const groups = [
      ...changes.changed.map((c) => ({ key: c.key, kind: "changed", fields: c.fields })),
      ...changes.added.map((key) => ({ key, kind: "added", fields: FIELDS })),
      ...changes.removed.map((key) => ({ key, kind: "removed", fields: FIELDS })),
    ];
    const label = { changed: "admin.s_changed", added: "admin.s_added", removed: "admin.s_removed" };
    const diffTable = el("table", { id: "diff-table", class: "diff-table", dataset: { from, to } },
      el("caption", { class: "visually-hidden" }, t("admin.diff_summary", counts)),
      el("colgroup", {}, el("col", { class: "field-col" }), el("col", { class: "side-col" }), el("col", { class: "side-col" })),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, t("admin.field")),
        el("th", { scope: "col" }, t("admin.version", { v: from })),
        el("th", { scope: "col" }, t("admin.version", { v: to })))),
      groups.map(({ key, kind, fields }) => {
        const old = before.get(key);
        const now = after.get(key);
        const name = (now || old).title;
        return el("tbody", { class: `diff-entry diff-${kind}`, dataset: { key, kind } },
          el("tr", { class: "entry-head" }, el("th", { scope: "rowgroup", colspan: 3 },
            el("code", {}, key), " ", name, " ", el("span", { class: `pill status-${kind}` }, t(label[kind])))),
          fields.filter((field) => field !== "key").map((field) => diffRow(field, old, now, kind)));
      }),
    );
    diffResult.replaceChildren(heading, diffTable);
    if (focus) heading.focus();
  }

  function diffRow(field, old, now, kind) {
    const display = (entry) => (field === "category_code" ? categoryName(entry.category_code) : fieldText(entry, field));
    const cell = (side, content) => el("td", { class: `side ${side}`, dataset: { field, side } }, content);
    let oldCell;
    let newCell;
    if (kind === "changed") {
      const [a, b] = changedMiddle(display(old), display(now));
      oldCell = cell("old", [a[0], a[1] ? el("del", {}, a[1]) : null, a[2]]);
      newCell = cell("new", [b[0], b[1] ? el("ins", {}, b[1]) : null, b[2]]);
    } else {
      oldCell = cell("old", old ? display(old) : el("span", { class: "muted" }, t("admin.absent")));
      newCell = cell("new", now ? display(now) : el("span", { class: "muted" }, t("admin.absent")));
    }
    return el("tr", { dataset: { field } }, el("th", { scope: "row" }, t(`admin.f.${field}`)), oldCell, newCell);
  }

  // --- rollback, with a confirm step ---------------------------------------------------------------
  function buildRollbackDialog() {
    const heading = el("h2", { id: "rollback-title" });
    const text = el("p", { id: "rollback-text" });
    const dirty = el("p", { class: "notice warn", hidden: true });
    const rollbackNote = el("input", { id: "rollback-note", name: "note", maxlength: 1000, autocomplete: "off" });
    const error = el("div", { id: "rollback-error", class: "alert", role: "alert", hidden: true });
    const confirm = el("button", { type: "submit", id: "confirm-rollback", class: "primary danger", "data-i18n": "admin.confirm_rollback" });
    const cancel = el("button", { type: "button", id: "cancel-rollback", "data-i18n": "admin.cancel" });
    const dialogForm = el("form", { method: "dialog" }, heading, text, dirty,
      el("label", { for: "rollback-note", "data-i18n": "admin.rollback_note" }), rollbackNote, error,
      el("div", { class: "actions" }, confirm, cancel));
    const root = el("dialog", { id: "rollback-dialog", class: "confirm", "aria-labelledby": "rollback-title", "aria-describedby": "rollback-text" }, dialogForm);
    let target = null;
    let trigger = null;
    cancel.addEventListener("click", () => root.close());
    root.addEventListener("close", () => {
      if (trigger && trigger.isConnected) trigger.focus();
      else addButton.focus();
    });
    dialogForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError(error);
      confirm.disabled = true;
      try {
        const book = await post(`${base}/rollback`, {
          to_version: target, base_version: state.book.version,
          note: rollbackNote.value.trim() || null, // the service's own note, which each language translates
        });
        if (!state.alive) return;
        trigger = null;
        root.close();
        afterPublish(book, () => t("admin.rolled", { from: target, v: book.version }));
      } catch (error_) {
        if (state.alive) showError(error, error_);
      } finally {
        confirm.disabled = false;
      }
    });
    return {
      root,
      open(version, from) {
        target = version;
        trigger = from;
        const latest = state.versions[0] ? state.versions[0].version : state.book.version;
        heading.textContent = t("admin.rollback_title", { v: version });
        text.textContent = t("admin.rollback_text", { v: version, next: latest + 1 });
        const pending = changesBetween(state.book.entries, state.draft).count;
        dirty.hidden = !pending;
        dirty.textContent = t("admin.rollback_dirty", { n: pending });
        rollbackNote.value = "";
        clearError(error);
        root.dataset.version = version;
        root.showModal();
        cancel.focus(); // the safe choice first
      },
    };
  }

  // --- import and export --------------------------------------------------------------------------
  function buildTransfer() {
    const exportVersion = el("select", { id: "export-version", name: "version" });
    const csv = el("button", { type: "button", id: "export-csv", "data-i18n": "admin.export_csv" });
    const json = el("button", { type: "button", id: "export-json", "data-i18n": "admin.export_json" });
    const exportError = el("div", { id: "export-error", class: "alert", role: "alert", hidden: true });
    const file = el("input", { id: "import-file", name: "file", type: "file", accept: ".csv,.json,text/csv,application/json",
      "aria-describedby": "import-help" });
    const format = el("select", { id: "import-format", name: "format" },
      el("option", { value: "csv" }, "CSV"), el("option", { value: "json" }, "JSON"));
    const importNote = el("input", { id: "import-note", name: "note", maxlength: 1000, autocomplete: "off" });
    const submit = el("button", { type: "submit", id: "import", class: "primary", "data-i18n": "admin.import_submit" });
    const importError = el("div", { id: "import-error", class: "alert", role: "alert", hidden: true });
    const importForm = el("form", { id: "import-form", class: "stack" },
      el("label", { for: "import-file", "data-i18n": "admin.import_file" }), file,
      el("small", { id: "import-help", class: "muted", "data-i18n": "admin.import_help" }),
      el("label", { for: "import-format", "data-i18n": "admin.import_format" }), format,
      el("label", { for: "import-note", "data-i18n": "admin.import_note" }), importNote,
      el("div", { class: "actions" }, submit), importError);
    const root = el("section", { id: "transfer", class: "card", "aria-labelledby": "transfer-title" },
      el("h2", { id: "transfer-title", "data-i18n": "admin.transfer" }),
      el("h3", { "data-i18n": "admin.export" }),
      el("div", { class: "toolbar" }, el("label", { for: "export-version", "data-i18n": "admin.export_version" }), exportVersion, csv, json),
      exportError,
      el("h3", { "data-i18n": "admin.import" }),
      importForm);

    async function download(kind, button) {
      clearError(exportError);
      const version = exportVersion.value;
      if (!version) return;
      button.disabled = true;
      try {
        const response = await request("GET", `${base}/export?format=${kind}&version=${version}`, undefined, { raw: true });
        const blob = await response.blob();
        const name = attachmentName(response.headers.get("Content-Disposition")) || `scripts-${city}-v${version}.${kind}`;
        const url = URL.createObjectURL(blob);
        const link = el("a", { href: url, download: name, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 30000);
        banner(() => t("admin.exported", { name }), "ok");
      } catch (error) {
        if (state.alive) showError(exportError, error);
      } finally {
        button.disabled = false;
      }
    }
    exportVersion.addEventListener("change", () => {
      state.exportChoice = exportVersion.selectedIndex <= 0 ? null : Number(exportVersion.value);
    });
    csv.addEventListener("click", () => download("csv", csv));
    json.addEventListener("click", () => download("json", json));

    file.addEventListener("change", () => {
      const chosen = file.files[0];
      if (chosen && /\.json$/i.test(chosen.name)) format.value = "json";
      else if (chosen && /\.csv$/i.test(chosen.name)) format.value = "csv";
      state.importArmed = false;
      clearError(importError);
    });
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError(importError);
      const chosen = file.files[0];
      if (!chosen) {
        importError.hidden = false;
        importError.replaceChildren(t("admin.pick_file"));
        file.focus();
        return;
      }
      if (changesBetween(state.book.entries, state.draft).count && !state.importArmed) {
        state.importArmed = true; // a second press confirms discarding the editor's changes
        importError.hidden = false;
        importError.replaceChildren(t("admin.import_dirty"));
        return;
      }
      state.importArmed = false;
      const params = new URLSearchParams({ format: format.value, base_version: String(state.book.version) });
      params.set("note", (importNote.value.trim() || t("admin.import_default", { name: chosen.name })).slice(0, 1000));
      submit.disabled = true;
      try {
        const type = format.value === "csv" ? "text/csv; charset=utf-8" : "application/json";
        const book = await upload(`${base}/import?${params}`, chosen, type);
        if (!state.alive) return;
        file.value = "";
        importNote.value = "";
        afterPublish(book, () => t("admin.imported", { n: book.entry_count, v: book.version }));
      } catch (error) {
        if (!state.alive) return;
        showError(importError, error);
        if (error.code === "stale_version") importError.append(rebaseButton());
      } finally {
        submit.disabled = false;
      }
    });
    return { root, exportVersion, csv, json };
  }

  function renderTransfer() {
    const { exportVersion, csv, json } = transfer;
    exportVersion.replaceChildren(...state.versions.map((v) => el("option", { value: v.version },
      v === state.versions[0] ? `${t("admin.version", { v: v.version })} (${t("admin.current")})` : t("admin.version", { v: v.version }))));
    if (state.exportChoice !== null && state.versions.some((v) => v.version === state.exportChoice)) {
      exportVersion.value = String(state.exportChoice);
    } else exportVersion.selectedIndex = 0;
    const none = !state.versions.length;
    exportVersion.disabled = none;
    csv.disabled = none;
    json.disabled = none;
  }

  // --- the agents' versions -----------------------------------------------------------------------
  async function loadAdoption() {
    let found;
    try {
      found = await get(`${base}/adoption`);
    } catch (error) {
      if (state.alive) adoptionBody.replaceChildren(el("p", { class: "error" }, t("admin.load_failed"), " ", error.message));
      return;
    }
    if (!state.alive) return;
    const wasOpen = !!adoptionBody.querySelector("details[open]"); // a refresh keeps the list open
    adoptionBody.dataset.serving = found.serving;
    adoptionBody.replaceChildren(...[
      el("p", {}, t("admin.serving", { n: found.serving })),
      found.by_version.length ? el("ul", { class: "plain" }, found.by_version.map((row) => el("li", { dataset: { version: row.version ?? "none" } },
        row.version === null ? t("admin.unacked", { n: row.agents }) : t("admin.on_version", { v: row.version, n: row.agents }),
        row.version === found.version ? el("span", { class: "pill ok" }, t("admin.current")) : null))) : null,
      found.behind.length
        ? el("details", { open: wasOpen }, el("summary", {}, `${t("admin.behind")} (${found.behind.length})`),
          el("ul", { class: "plain" }, found.behind.map((a) => el("li", {}, `${a.name} · ${cityName(a.city, lang())} · `,
            a.version === null ? "—" : t("admin.version", { v: a.version })))))
        : found.serving ? el("p", { class: "ok-text" }, t("admin.all_current")) : null,
    ].filter(Boolean));
  }
  adoptionRefresh.addEventListener("click", loadAdoption);

  // --- start ----------------------------------------------------------------------------------------
  async function loadCategories() {
    while (state.alive) {
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      try {
        state.categories = await get("/categories");
      } catch {
        continue;
      }
      if (state.alive) renderAll(); // an open entry form gets its list
      return;
    }
  }

  async function start() {
    renderHeader();
    historyBody.replaceChildren(el("p", { class: "muted" }, t("admin.loading")));
    const [book, categories] = await Promise.all([get(base), get("/categories").catch(() => null)]);
    if (!state.alive) return;
    if (categories) {
      state.categories = categories;
      refillCategories(); // a form opened while the list was on its way
    } else loadCategories(); // the entry form's list must not stay empty for one failed read
    setBook(book);
    const stored = JSON.parse(sessionStorage.getItem(draftKey) || "null");
    if (stored && Array.isArray(stored.entries)) {
      if (stored.base_version === book.version) {
        state.draft = stored.entries.map(normalised);
        saveDraft();
        banner(() => t("admin.restored"), "info");
      } else if (stored.base_version >= 0 && stored.base_version < book.version) {
        const old = stored.base_version === 0 ? { entries: [] } : await get(`${base}/versions/${stored.base_version}`);
        if (!state.alive) return;
        await rebaseOnLatest(old.entries.map(normalised), stored.entries.map(normalised));
      }
    }
    renderEditor();
    await loadVersions();
    loadAdoption();
  }

  function renderAll() {
    renderEditor();
    renderHistory();
    renderDiffChoices();
    renderTransfer();
    noticeNewer();
    renderDiff(false);
    if (!versionView.hidden) renderVersion(false);
    if (!form.root.hidden && state.editing) {
      form.heading.textContent = state.editing.key === null ? t("admin.new_entry") : t("admin.edit_entry", { key: state.editing.key });
    }
    refillCategories();
    loadAdoption();
  }

  onLanguage(() => {
    if (state.alive && state.book) renderAll();
  });
  const unload = (event) => {
    if (state.book && changesBetween(state.book.entries, state.draft).count) event.preventDefault();
  };
  window.addEventListener("beforeunload", unload);
  const poll = setInterval(() => {
    if (!state.alive || !state.book) return;
    loadVersions();
    loadAdoption();
  }, POLL_MS);

  start().catch((error) => {
    if (!state.alive) return;
    const problem = el("div", { class: "alert", role: "alert" });
    showError(problem, error);
    editor.append(problem);
  });

  return () => {
    state.alive = false;
    gaps.stop();
    clearInterval(poll);
    clearTimeout(filterTimer);
    window.removeEventListener("beforeunload", unload);
    if (dialog.root.open) dialog.root.close();
  };
}
