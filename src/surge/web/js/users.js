// Users: a city admin lists, creates, disables and enables its city's agents and resets their
// passwords; the coordinator does the same for every user, of any role and city.
import { ApiError, CITY_NAMES, cityName, el, get, post, request } from "./api.js";
import { add, language, onLanguage, t } from "./i18n.js";

const ROLES = ["agent", "city_admin", "coordinator", "cti"];
const PROVINCE_WIDE = new Set(["coordinator"]);
const MIN_PASSWORD = 8;

add({
  zh: {
    "users.title": "用户管理", "users.all": "全省", "users.create": "新建用户", "users.username": "用户名",
    "users.username_help": "1–64 个字符，不含空格", "users.password": "初始密码", "users.password_help": "至少 8 位",
    "users.role": "角色", "users.city": "城市", "users.province": "全省（无城市）", "users.submit": "创建",
    "users.created": "已创建 {name}", "users.list": "用户列表", "users.filter": "按用户名筛选",
    "users.count": "共 {n} 人", "users.none": "还没有用户", "users.no_match": "没有符合筛选的用户",
    "users.state": "状态", "users.created_at": "创建时间", "users.actions": "操作",
    "users.active": "启用", "users.disabled": "已停用", "users.disable": "停用", "users.enable": "启用",
    "users.disable_label": "停用 {name}", "users.enable_label": "启用 {name}",
    "users.reset": "重置密码", "users.reset_label": "重置 {name} 的密码",
    "users.was_disabled": "已停用 {name}：其登录与坐席连接已立即终止",
    "users.was_enabled": "已启用 {name}：需重新登录",
    "users.reset_title": "重置 {name} 的密码", "users.new_password": "新密码",
    "users.reset_text": "至少 8 位。重置后该用户已有的登录立即失效，需用新密码重新登录。",
    "users.confirm_reset": "重置", "users.cancel": "取消", "users.was_reset": "已重置 {name} 的密码：其原有登录已失效",
    "users.err.short": "密码至少 8 位", "users.err.taken": "用户名已被使用：", "users.err.forbidden": "无权执行此操作：",
    "users.err.invalid": "内容不符合要求：", "users.err.not_found": "未找到：", "users.err.other": "操作失败（{status}）：",
    "users.loading": "正在加载…", "users.load_failed": "加载失败：",
  },
  en: {
    "users.title": "Users", "users.all": "the province", "users.create": "New user", "users.username": "User name",
    "users.username_help": "1–64 characters, no spaces", "users.password": "Initial password", "users.password_help": "at least 8 characters",
    "users.role": "Role", "users.city": "City", "users.province": "Province-wide (no city)", "users.submit": "Create",
    "users.created": "Created {name}", "users.list": "Users", "users.filter": "Filter by user name",
    "users.count": "{n} users", "users.none": "No users yet", "users.no_match": "No user matches the filter",
    "users.state": "State", "users.created_at": "Created", "users.actions": "Actions",
    "users.active": "active", "users.disabled": "disabled", "users.disable": "Disable", "users.enable": "Enable",
    "users.disable_label": "Disable {name}", "users.enable_label": "Enable {name}",
    "users.reset": "Reset password", "users.reset_label": "Reset the password of {name}",
    "users.was_disabled": "{name} is disabled: its logins and console connection ended at once",
    "users.was_enabled": "{name} is enabled: it logs in again",
    "users.reset_title": "Reset the password of {name}", "users.new_password": "New password",
    "users.reset_text": "At least 8 characters. The user's present logins end at once; it logs in again with the new password.",
    "users.confirm_reset": "Reset", "users.cancel": "Cancel", "users.was_reset": "The password of {name} is reset: its logins ended",
    "users.err.short": "A password has at least 8 characters", "users.err.taken": "The user name is taken:",
    "users.err.forbidden": "Not allowed:", "users.err.invalid": "Not valid:", "users.err.not_found": "Not found:",
    "users.err.other": "It failed ({status}):", "users.loading": "Loading…", "users.load_failed": "Could not load:",
  },
});

const STYLESHEET = new URL("../css/users.css", import.meta.url).href;
const LEADS = {
  username_taken: "users.err.taken", forbidden: "users.err.forbidden", not_found: "users.err.not_found",
};

function addStylesheet() {
  if (document.querySelector("link[data-page='users']")) return;
  document.head.append(el("link", { rel: "stylesheet", href: STYLESHEET, "data-page": "users" }));
}

function showError(target, error) {
  target.hidden = false;
  if (!(error instanceof ApiError) || error.code === "network") {
    target.replaceChildren(error.code === "network" ? t("error.network") : String(error.message || error));
    return;
  }
  const lead = LEADS[error.code] || (error.status === 422 ? "users.err.invalid" : "users.err.other");
  target.replaceChildren(el("strong", {}, t(lead, { status: error.status })), " ", error.message, " ",
    el("code", { class: "code" }, `${error.status} ${error.code}`));
}

function clearError(target) {
  target.replaceChildren();
  target.hidden = true;
}

export function mount(view, { who, banner }) {
  addStylesheet();
  const coordinator = who.role === "coordinator";
  const state = { alive: true, users: [], filter: "", loaded: false };
  const lang = () => language();
  const when = (iso) => new Date(iso).toLocaleString(lang() === "en" ? "en-GB" : "zh-CN", { dateStyle: "short", timeStyle: "short" });

  // --- the create form: a city admin creates agents of its city; the coordinator any user ----------
  const username = el("input", { id: "new-username", name: "username", required: true, maxlength: 64,
    autocomplete: "off", "aria-describedby": "new-username-help" });
  const password = el("input", { id: "new-password", name: "password", type: "password", required: true,
    minlength: MIN_PASSWORD, maxlength: 256, autocomplete: "new-password", "aria-describedby": "new-password-help" });
  const role = el("select", { id: "new-role", name: "role" });
  const city = el("select", { id: "new-city", name: "city" });
  const createError = el("div", { id: "create-error", class: "alert", role: "alert", hidden: true });
  const field = (input, key, help) => el("div", { class: "field" },
    el("label", { for: input.id, "data-i18n": key }), input,
    help ? el("small", { id: `${input.id}-help`, class: "muted", "data-i18n": help }) : null);
  // novalidate: the page says what is wrong, in the page's language (and the server checks it all).
  const createForm = el("form", { id: "create-user", class: "user-form", novalidate: true },
    field(username, "users.username", "users.username_help"),
    field(password, "users.password", "users.password_help"),
    coordinator ? field(role, "users.role") : null,
    coordinator ? field(city, "users.city") : null,
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", "data-i18n": "users.submit" })),
    createError);

  function fillChoices() {
    const chosenRole = role.value || "agent";
    role.replaceChildren(...ROLES.map((code) => el("option", { value: code }, t(`role.${code}`))));
    role.value = chosenRole;
    const chosenCity = city.value;
    city.replaceChildren(el("option", { value: "" }, t("users.province")),
      ...Object.keys(CITY_NAMES).map((code) => el("option", { value: code }, `${cityName(code, lang())} ${code}`)));
    city.value = chosenCity;
    city.disabled = PROVINCE_WIDE.has(role.value);
    if (city.disabled) city.value = "";
  }
  role.addEventListener("change", fillChoices);

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(createError);
    if (password.value.length < MIN_PASSWORD) {
      createError.hidden = false;
      createError.replaceChildren(t("users.err.short"));
      password.focus();
      return;
    }
    const body = coordinator
      ? { username: username.value.trim(), password: password.value, role: role.value, city: city.value || null }
      : { username: username.value.trim(), password: password.value, role: "agent", city: who.city };
    const submit = createForm.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const made = await post("/users", body);
      if (!state.alive) return;
      createForm.reset();
      fillChoices();
      state.users.push(made);
      renderList();
      banner(() => t("users.created", { name: made.username }), "ok");
      username.focus();
    } catch (error) {
      if (state.alive) showError(createError, error);
    } finally {
      submit.disabled = false;
    }
  });

  // --- the list ----------------------------------------------------------------------------------
  const filter = el("input", { id: "user-filter", type: "search", autocomplete: "off" });
  const count = el("span", { id: "user-count", class: "muted" });
  const listError = el("div", { id: "list-error", class: "alert", role: "alert", hidden: true });
  const table = el("table", { id: "users", class: "users" });
  const scope = el("span", { id: "users-scope" });
  filter.addEventListener("input", () => {
    state.filter = filter.value.trim().toLowerCase();
    renderList();
  });

  function renderList() {
    const shown = state.users.filter((user) => user.username.toLowerCase().includes(state.filter));
    count.textContent = t("users.count", { n: state.users.length });
    if (!state.loaded) {
      table.replaceChildren(el("caption", {}, t("users.loading")));
      return;
    }
    const head = el("thead", {}, el("tr", {},
      ["users.username", "users.role", "users.city", "users.state", "users.created_at", "users.actions"]
        .map((key) => el("th", { scope: "col" }, t(key)))));
    const rows = shown.map((user) => {
      const toggle = el("button", { type: "button", class: "small toggle",
        "aria-label": t(user.disabled ? "users.enable_label" : "users.disable_label", { name: user.username }),
        onclick: () => setDisabled(user, !user.disabled, toggle) }, t(user.disabled ? "users.enable" : "users.disable"));
      const reset = el("button", { type: "button", class: "small reset",
        "aria-label": t("users.reset_label", { name: user.username }),
        onclick: () => dialog.open(user, reset) }, t("users.reset"));
      const self = user.username === who.username; // changing oneself is refused (409)
      return el("tr", { dataset: { username: user.username, disabled: String(user.disabled) } },
        el("th", { scope: "row" }, user.username),
        el("td", {}, t(`role.${user.role}`)),
        el("td", {}, user.city ? cityName(user.city, lang()) : t("users.all")),
        el("td", {}, el("span", { class: `pill ${user.disabled ? "bad" : "ok"}` }, t(user.disabled ? "users.disabled" : "users.active"))),
        el("td", { class: "time" }, when(user.created_at)),
        el("td", { class: "row-actions" }, self ? null : [toggle, reset]));
    });
    const empty = shown.length ? null : el("tr", {}, el("td", { colspan: 6, class: "muted" },
      t(state.users.length ? "users.no_match" : "users.none")));
    table.replaceChildren(el("caption", { class: "visually-hidden" }, t("users.list")), head, el("tbody", {}, rows, empty));
  }

  async function setDisabled(user, disabled, button) {
    clearError(listError);
    button.disabled = true;
    try {
      const changed = await request("PATCH", `/users/${user.id}`, { disabled });
      if (!state.alive) return;
      Object.assign(user, changed);
      renderList();
      banner(() => t(disabled ? "users.was_disabled" : "users.was_enabled", { name: user.username }), "ok");
      const again = table.querySelector(`tr[data-username="${CSS.escape(user.username)}"] button.toggle`);
      if (again) again.focus();
    } catch (error) {
      if (!state.alive) return;
      button.disabled = false;
      showError(listError, error);
    }
  }

  // --- the password reset, in a dialog -------------------------------------------------------------
  function buildResetDialog() {
    const heading = el("h2", { id: "reset-title" });
    const input = el("input", { id: "reset-password", name: "password", type: "password", required: true,
      minlength: MIN_PASSWORD, maxlength: 256, autocomplete: "new-password", "aria-describedby": "reset-text" });
    const error = el("div", { id: "reset-error", class: "alert", role: "alert", hidden: true });
    const confirm = el("button", { type: "submit", id: "confirm-reset", class: "primary", "data-i18n": "users.confirm_reset" });
    const cancel = el("button", { type: "button", id: "cancel-reset", "data-i18n": "users.cancel" });
    const form = el("form", { method: "dialog", novalidate: true }, heading,
      el("p", { id: "reset-text", "data-i18n": "users.reset_text" }),
      el("label", { for: "reset-password", "data-i18n": "users.new_password" }), input, error,
      el("div", { class: "actions" }, confirm, cancel));
    const root = el("dialog", { id: "reset-dialog", "aria-labelledby": "reset-title" }, form);
    let target = null;
    let trigger = null;
    cancel.addEventListener("click", () => root.close());
    root.addEventListener("close", () => {
      input.value = "";
      if (trigger && trigger.isConnected) trigger.focus();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearError(error);
      if (input.value.length < MIN_PASSWORD) {
        error.hidden = false;
        error.replaceChildren(t("users.err.short"));
        return;
      }
      confirm.disabled = true;
      try {
        await request("PATCH", `/users/${target.id}`, { password: input.value });
        if (!state.alive) return;
        root.close();
        banner(() => t("users.was_reset", { name: target.username }), "ok");
      } catch (error_) {
        if (state.alive) showError(error, error_);
      } finally {
        confirm.disabled = false;
      }
    });
    return {
      root,
      open(user, from) {
        target = user;
        trigger = from;
        heading.textContent = t("users.reset_title", { name: user.username });
        clearError(error);
        root.dataset.username = user.username;
        root.showModal();
        input.focus();
      },
      retitle() {
        if (target) heading.textContent = t("users.reset_title", { name: target.username });
      },
    };
  }
  const dialog = buildResetDialog();

  function renderHeader() {
    scope.textContent = coordinator ? t("users.all") : cityName(who.city, lang());
  }

  view.append(el("div", { class: "users-page" },
    el("h1", { id: "users-title" }, el("span", { "data-i18n": "users.title" }), " · ", scope),
    el("section", { id: "create", class: "card", "aria-labelledby": "create-title" },
      el("h2", { id: "create-title", "data-i18n": "users.create" }), createForm),
    el("section", { id: "list", class: "card", "aria-labelledby": "list-title" },
      el("h2", { id: "list-title" }, el("span", { "data-i18n": "users.list" }), " ", count),
      el("div", { class: "toolbar" }, el("label", { for: "user-filter", "data-i18n": "users.filter" }), filter),
      listError, el("div", { class: "scroll" }, table)),
    dialog.root));

  async function load() {
    try {
      const found = await get("/users");
      if (!state.alive) return;
      state.users = found;
      state.loaded = true;
      renderList();
    } catch (error) {
      if (state.alive) showError(listError, error);
    }
  }

  renderHeader();
  fillChoices();
  renderList();
  load();
  const stop = onLanguage(() => {
    if (!state.alive) return;
    renderHeader();
    fillChoices();
    renderList();
    dialog.retitle();
  });
  return () => {
    state.alive = false;
    stop();
    if (dialog.root.open) dialog.root.close();
  };
}
