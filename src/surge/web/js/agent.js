// The agent console (cloud seat): presence, offers, the call in hand, the host's answer scripts.
import { CITY_NAMES, cityName, el, get, socketUrl } from "./api.js";
import { add, duration, language, onLanguage, t, translate } from "./i18n.js";
import { noticeList } from "./supervision.js";

add({
  zh: {
    "agent.connection": "连接", "agent.online": "已连接", "agent.reconnecting": "网络中断，正在重新连接…",
    "agent.reconnected": "已重新连接", "agent.state": "状态", "agent.available": "空闲", "agent.break": "小休",
    "agent.go_available": "置闲", "agent.go_break": "小休", "agent.offered": "振铃中", "agent.busy": "通话中",
    "agent.wrap_up": "话后整理", "agent.wrap_up_left": "话后整理 · 剩余 {n} 秒",
    "agent.offer": "来电", "agent.host": "来电城市", "agent.caller": "来电号码", "agent.waited": "已等待",
    "agent.expires": "剩余", "agent.accept": "接听 (A)", "agent.decline": "拒接 (D)",
    "agent.no_offer": "暂无来电", "agent.call": "当前通话", "agent.category": "诉求分类", "agent.pick": "请选择",
    "agent.disposition": "办理方式", "agent.answered": "直接答复", "agent.transferred": "转办",
    "agent.summary": "工单摘要", "agent.script_used": "引用口径", "agent.none": "无", "agent.complete": "完成工单",
    "agent.scripts": "答复口径", "agent.search": "搜索口径", "agent.version": "版本 {v}", "agent.use": "引用",
    "agent.updated": "{city}答复口径已更新至第 {v} 版", "agent.joined": "您已加入{city}多援一，正在援助{city}热线",
    "agent.left": "{city}多援一已结束，您已回到本市话务", "agent.missed": "来电超时未接，已转为小休",
    "agent.revoked": "来电已撤回", "agent.completed": "工单已完成", "agent.no_entries": "暂无口径",
    "agent.surge": "多援一", "agent.logged_out": "您已被管理员签出",
    "agent.note": "转来备注", "agent.channel": "渠道", "agent.talk": "通话时长", "agent.priority": "优先级 {n}",
    "channel.phone": "电话", "channel.app": "App", "channel.wechat": "微信", "channel.web": "网页", "channel.sms": "短信",
    "agent.transfer": "转接", "agent.transfer_to": "转至", "agent.transfer_host": "来电城市（{city}）",
    "agent.transfer_note": "转接说明", "agent.transfer_send": "转接来电", "agent.transferred_to": "来电已转至{city}",
    "agent.callback": "回拨", "agent.callback_offer": "回拨请求", "agent.dialing": "正在回拨来电人…",
    "agent.unreached_retry": "回拨未接通，将在 {n} 秒后重新回拨", "agent.unreached_final": "回拨未接通，已多次尝试，回拨结束",
    "agent.required": "必读口径",
    "agent.required_text": "{city}答复口径第 {v} 版为必读版本：阅读确认前，暂不向您分配{city}来电。",
    "agent.required_changes": "本次变更：新增 {a} 条，修改 {c} 条，删除 {r} 条",
    "agent.required_show": "阅读{city}口径", "agent.required_done": "已确认阅读{city}答复口径第 {v} 版，恢复分配来电",
    "agent.gap": "口径未覆盖", "agent.gap_title": "反馈口径未覆盖的问题（通话 #{id}）", "agent.gap_question": "来电人的问题",
    "agent.gap_note": "备注（可选）", "agent.gap_send": "提交反馈", "agent.gap_cancel": "取消",
    "agent.gap_recorded": "已反馈给{city}口径管理员：{q}", "agent.gap_answered": "{city}第 {v} 版答复口径已覆盖您反馈的问题：{q}",
  },
  en: {
    "agent.connection": "Connection", "agent.online": "Connected", "agent.reconnecting": "Network lost, reconnecting…",
    "agent.reconnected": "Reconnected", "agent.state": "State", "agent.available": "Available", "agent.break": "On break",
    "agent.go_available": "Go available", "agent.go_break": "Take a break", "agent.offered": "Ringing", "agent.busy": "On a call",
    "agent.wrap_up": "Wrap-up", "agent.wrap_up_left": "Wrap-up · {n} s left",
    "agent.offer": "Incoming call", "agent.host": "City", "agent.caller": "Caller", "agent.waited": "Waited",
    "agent.expires": "Expires in", "agent.accept": "Accept (A)", "agent.decline": "Decline (D)",
    "agent.no_offer": "No incoming call", "agent.call": "Call in hand", "agent.category": "Category", "agent.pick": "Choose",
    "agent.disposition": "Disposition", "agent.answered": "Answered online", "agent.transferred": "Transferred",
    "agent.summary": "Summary", "agent.script_used": "Script used", "agent.none": "none", "agent.complete": "Complete",
    "agent.scripts": "Answer scripts", "agent.search": "Search scripts", "agent.version": "version {v}", "agent.use": "Use",
    "agent.updated": "{city}'s answer scripts are now version {v}", "agent.joined": "You joined the surge for {city}: you now help its hotline",
    "agent.left": "The surge for {city} has ended; you are back on your own city's calls", "agent.missed": "The offer expired; you are on break",
    "agent.revoked": "The offer was withdrawn", "agent.completed": "Ticket completed", "agent.no_entries": "No entries",
    "agent.surge": "Surge", "agent.logged_out": "A supervisor logged you out",
    "agent.note": "Note from the last agent", "agent.channel": "Channel", "agent.talk": "Talk time", "agent.priority": "priority {n}",
    "channel.phone": "Phone", "channel.app": "App", "channel.wechat": "WeChat", "channel.web": "Web", "channel.sms": "SMS",
    "agent.transfer": "Transfer", "agent.transfer_to": "To", "agent.transfer_host": "The call's city ({city})",
    "agent.transfer_note": "Note for the next agent", "agent.transfer_send": "Transfer the call", "agent.transferred_to": "The call went to {city}",
    "agent.callback": "Callback", "agent.callback_offer": "Callback request", "agent.dialing": "Dialling the caller…",
    "agent.unreached_retry": "The caller was not reached; the callback is retried in {n} s",
    "agent.unreached_final": "The caller was not reached after every attempt; the callback is closed",
    "agent.required": "Required reading",
    "agent.required_text": "{city}'s answer scripts version {v} are required: no {city} calls are offered to you until you have read them.",
    "agent.required_changes": "What changed: {a} added, {c} changed, {r} removed",
    "agent.required_show": "Read {city}'s scripts", "agent.required_done": "You have read {city}'s answer scripts version {v}; calls are offered again",
    "agent.gap": "Not in the scripts", "agent.gap_title": "A question the scripts do not answer (call #{id})",
    "agent.gap_question": "The caller's question", "agent.gap_note": "Note (optional)", "agent.gap_send": "Send to the host",
    "agent.gap_cancel": "Cancel", "agent.gap_recorded": "Sent to {city}'s script admins: {q}",
    "agent.gap_answered": "{city}'s answer scripts version {v} now answer your question: {q}",
  },
});

export function mount(view, { who, banner }) {
  const state = {
    socket: null, closed: false, retry: 0, offer: null, call: null, presence: "break", wrapUp: null,
    surges: new Map(), surgeText: null, scriptsCity: who.city, book: null, changed: new Set(), usedScript: null, categories: [],
    // Required script versions not acknowledged yet: city -> { version, diff }. A version is
    // acknowledged once its book is on display (`acked`: city -> version sent); `reading` is the
    // city whose required scripts the agent chose to read.
    required: new Map(), acked: new Map(), reading: null,
  };
  const lang = () => language();
  const ui = {
    connection: el("span", { id: "connection", class: "pill" }),
    presence: el("span", { id: "presence", class: "pill" }),
    available: el("button", { type: "button", id: "go-available", "data-i18n": "agent.go_available" }),
    pause: el("button", { type: "button", id: "go-break", "data-i18n": "agent.go_break" }),
    offer: el("section", { id: "offer", class: "card", "aria-live": "assertive", "aria-labelledby": "offer-title" }),
    call: el("section", { id: "call", class: "card", "aria-labelledby": "call-title" }),
    scripts: el("section", { id: "scripts", class: "card", "aria-labelledby": "scripts-title" }),
    surge: el("div", { id: "surge-banner", role: "status", "aria-live": "polite", hidden: true }),
    required: el("div", { id: "required-banner", class: "required-banner", role: "alert", hidden: true }),
    notices: noticeList(),
  };
  view.append(
    el("div", { class: "toolbar" },
      el("span", { "data-i18n": "agent.connection" }), ui.connection,
      el("span", { "data-i18n": "agent.state" }), ui.presence, ui.available, ui.pause),
    ui.surge,
    ui.required,
    el("div", { class: "agent-grid" }, el("div", {}, ui.offer, ui.call), ui.scripts),
    ui.notices.root,
  );

  const send = (message) => state.socket && state.socket.readyState === WebSocket.OPEN && state.socket.send(JSON.stringify(message));
  ui.available.addEventListener("click", () => send({ type: "status", state: "available" }));
  ui.pause.addEventListener("click", () => send({ type: "status", state: "break" }));

  // --- connection, with reconnection after a drop -------------------------------------------
  function connect() {
    const socket = new WebSocket(socketUrl("/ws/agent"));
    state.socket = socket;
    socket.addEventListener("open", () => {
      if (state.retry > 0) banner(() => t("agent.reconnected"), "ok");
      state.retry = 0;
      renderConnection(true);
    });
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      renderConnection(false);
      if (state.closed) return;
      if (event.code === 4401) {
        window.dispatchEvent(new Event("surge:logged-out"));
        return;
      }
      if (event.code === 4409) return; // another console of this agent took over
      if (event.code === 4408) { // a supervisor logged the agent out: no reconnecting
        ui.connection.dataset.i18n = "agent.logged_out";
        ui.connection.textContent = t("agent.logged_out");
        banner(() => t("agent.logged_out"), "warn");
        return;
      }
      banner(() => t("agent.reconnecting"), "warn");
      const delay = Math.min(10000, 500 * 2 ** state.retry++);
      setTimeout(() => state.closed || connect(), delay);
    });
  }

  function renderConnection(open) {
    // Marked for translate(): a language switch relabels it as it does the static labels.
    ui.connection.dataset.i18n = open ? "agent.online" : "agent.reconnecting";
    ui.connection.textContent = t(ui.connection.dataset.i18n);
    ui.connection.className = `pill ${open ? "ok" : "warn"}`;
    ui.connection.dataset.state = open ? "online" : "offline";
  }

  // --- frames from the server -------------------------------------------------------------------
  function receive(frame) {
    switch (frame.type) {
      case "hello":
        state.presence = frame.state;
        state.wrapUp = null; // a wrap-up in progress follows as its own `state` frame
        state.call = frame.call ? { ...frame.call } : null;
        state.offer = null;
        state.acked = new Map(); // a new connection: say again what is on display
        for (const [city, version] of Object.entries(frame.required || {})) holdFor(city, version);
        // A book that is not on display is acknowledged at once unless it is required reading.
        for (const [city, version] of Object.entries(frame.scripts || {})) {
          if (!state.required.has(city) && city !== state.book?.city) acknowledge(city, version);
        }
        if (state.book) shown(state.book);
        break;
      case "state":
        state.presence = frame.state;
        // In its wrap-up the agent tidies the ticket up; it ends by itself, or with "Go available".
        state.wrapUp = frame.state === "wrap_up"
          ? { callId: frame.call_id, endsAt: performance.now() + frame.ends_in_s * 1000 } : null;
        if (frame.reason === "missed_offer") {
          state.offer = null;
          banner(() => t("agent.missed"), "warn");
        }
        break;
      case "offer":
        state.reading = null; // the call's city's scripts go on display, then the usual ones
        state.offer = { ...frame, receivedAt: performance.now() };
        state.presence = "offered";
        break;
      case "offer.revoked":
        if (state.offer && state.offer.offer_id === frame.offer_id) state.offer = null;
        banner(() => t("agent.revoked"), "info");
        break;
      case "call.connected":
        state.offer = null;
        state.call = frame.call ? { ...frame.call } : { id: frame.call_id };
        state.call.since = performance.now();
        state.usedScript = null;
        state.presence = "busy";
        break;
      case "call.completed":
        state.call = null;
        banner(() => t("agent.completed"), "ok");
        break;
      case "call.transferred":
        state.call = null;
        banner(() => t("agent.transferred_to", { city: cityName(frame.to_city, lang()) }), "ok");
        break;
      case "callback.dialing": // a callback (回拨) accepted: the telephony dials the caller
        state.offer = null;
        state.call = { ...frame.call, dialing: true };
        state.usedScript = null;
        state.presence = "busy";
        break;
      case "callback.unreached":
        state.call = null;
        banner(() => (frame.retry_in_s === null ? t("agent.unreached_final")
          : t("agent.unreached_retry", { n: Math.round(frame.retry_in_s) })), "warn");
        break;
      case "surge.joined":
        state.surges.set(frame.surge_id, frame.host_city);
        showSurge(() => t("agent.joined", { city: cityName(frame.host_city, lang()) }), "joined");
        break; // the host's scripts go on display next (chooseScriptsCity), which acknowledges them
      case "surge.left":
        state.surges.delete(frame.surge_id);
        showSurge(() => t("agent.left", { city: cityName(frame.host_city, lang()) }), "left");
        break;
      case "scripts.updated":
        if (frame.required) holdFor(frame.city, frame.version);
        else if (frame.city !== state.scriptsCity && !state.required.has(frame.city)) acknowledge(frame.city, frame.version);
        if (frame.city === state.scriptsCity) {
          const changes = frame.changes || {};
          state.changed = new Set([...(changes.added || []), ...(changes.changed || [])]);
          banner(() => t("agent.updated", { city: cityName(frame.city, lang()), v: frame.version }), "info");
          loadScripts(true);
        }
        break;
      case "notice":
        ui.notices.add(frame);
        break;
      case "gap.recorded":
        closeGap();
        banner(() => t("agent.gap_recorded", { city: cityName(frame.city, lang()), q: frame.question }), "ok");
        break;
      case "gap.answered":
        showGapAnswered(frame);
        break;
      case "error":
        banner(`${frame.code}: ${frame.message}`, "error");
        break;
      default:
        break;
    }
    chooseScriptsCity();
    render();
  }

  function acknowledge(city, version) {
    if (state.socket?.readyState !== WebSocket.OPEN) return; // sent again after the next hello
    send({ type: "scripts.ack", city, version });
    state.acked.set(city, version);
  }

  // A required version holds back this city's calls until its book has been on display here.
  function holdFor(city, version) {
    const held = { version, diff: null };
    state.required.set(city, held);
    const from = state.acked.get(city) ?? Math.max(0, version - 1);
    get(`/cities/${city}/scripts/diff?from=${Math.min(from, version)}&to=${version}`)
      .then((diff) => { held.diff = diff; renderRequired(); }).catch(() => {});
    renderRequired();
  }

  // A book is on display: acknowledge it, which lifts a hold it satisfies.
  function shown(book) {
    if (!book.city || book.error || (state.acked.get(book.city) ?? -1) >= book.version) return;
    acknowledge(book.city, book.version);
    const held = state.required.get(book.city);
    if (held && book.version >= held.version && state.acked.get(book.city) === book.version) {
      state.required.delete(book.city); // they stay on display until an offer needs others
      banner(() => t("agent.required_done", { city: cityName(book.city, lang()), v: book.version }), "ok");
    }
    renderRequired();
  }

  function renderRequired() {
    const rows = [...state.required.entries()].map(([city, held]) => {
      const name = cityName(city, lang());
      const diff = held.diff;
      const show = el("button", { type: "button", class: "small", dataset: { city } }, t("agent.required_show", { city: name }));
      show.addEventListener("click", () => {
        state.reading = city;
        chooseScriptsCity();
      });
      return el("div", { class: "required-item", dataset: { city, version: held.version } },
        el("strong", {}, t("agent.required"), " · "), t("agent.required_text", { city: name, v: held.version }),
        diff ? el("div", { class: "required-changes" },
          t("agent.required_changes", { a: diff.added.length, c: diff.changed.length, r: diff.removed.length }),
          [...diff.added, ...diff.changed.map((c) => c.key)].length
            ? el("span", { class: "muted" }, " (", [...diff.added, ...diff.changed.map((c) => c.key)].join(", "), ")") : null)
          : null,
        city === state.scriptsCity ? null : show);
    });
    ui.required.replaceChildren(...rows);
    ui.required.hidden = rows.length === 0;
  }

  // `text` gives the banner in the language of the moment (said again on a switch).
  function showSurge(text, kind) {
    state.surgeText = text;
    ui.surge.textContent = text();
    ui.surge.className = `surge-banner ${kind}`;
    ui.surge.dataset.kind = kind;
    ui.surge.hidden = false;
  }

  // --- rendering ------------------------------------------------------------------------------
  let ticker = null;
  let wrapTicker = null;
  function render() {
    const labels = {
      available: "agent.available", break: "agent.break", offered: "agent.offered", busy: "agent.busy",
      wrap_up: "agent.wrap_up",
    };
    clearInterval(wrapTicker);
    const wrapUp = state.wrapUp;
    if (wrapUp) {
      const tick = () => {
        const left = Math.max(0, Math.ceil((wrapUp.endsAt - performance.now()) / 1000));
        ui.presence.textContent = t("agent.wrap_up_left", { n: left });
      };
      tick();
      wrapTicker = setInterval(tick, 250);
    } else {
      ui.presence.textContent = t(labels[state.presence] || state.presence);
    }
    ui.presence.dataset.state = state.presence;
    ui.available.disabled = state.presence === "available" || !!state.offer || !!state.call;
    ui.pause.disabled = state.presence === "break" || !!state.call;
    renderOffer();
    renderCall();
    renderGap();
    for (const use of list.querySelectorAll("button.cite")) use.hidden = !citable();
  }

  // An entry can be cited while a call is in hand (not while a callback is still dialling).
  const citable = () => !!state.call && !state.call.dialing;

  function renderOffer() {
    clearInterval(ticker);
    const offer = state.offer;
    const callback = offer?.call.kind === "callback";
    ui.offer.replaceChildren(el("h2", { id: "offer-title", "data-i18n": callback ? "agent.callback_offer" : "agent.offer" }));
    if (!offer) {
      ui.offer.append(el("p", { class: "muted", "data-i18n": "agent.no_offer" }));
      ui.offer.classList.remove("ringing");
      translate(ui.offer);
      return;
    }
    ui.offer.classList.add("ringing");
    if (callback) ui.offer.append(el("p", {}, el("span", { id: "offer-kind", class: "pill warn", "data-i18n": "agent.callback" })));
    const waited = el("dd", { id: "offer-waited" });
    const countdown = el("dd", { id: "offer-countdown" });
    const accept = el("button", { type: "button", id: "accept", class: "primary", "data-i18n": "agent.accept" });
    const decline = el("button", { type: "button", id: "decline", "data-i18n": "agent.decline" });
    accept.addEventListener("click", () => send({ type: "accept", offer_id: offer.offer_id }));
    decline.addEventListener("click", () => send({ type: "decline", offer_id: offer.offer_id }));
    ui.offer.append(
      el("dl", {},
        el("dt", { "data-i18n": "agent.host" }), el("dd", { id: "offer-city" }, cityName(offer.call.city, lang()),
          offer.surge_id ? el("span", { class: "pill warn" }, ` ${t("agent.surge")} #${offer.surge_id}`) : null),
        el("dt", { "data-i18n": "agent.caller" }), el("dd", { id: "offer-caller" }, offer.call.caller),
        el("dt", { "data-i18n": "agent.channel" }), el("dd", { id: "offer-channel" }, t(`channel.${offer.call.channel}`),
          offer.call.priority > 0 ? el("span", { class: "pill warn", id: "offer-priority" }, ` ${t("agent.priority", { n: offer.call.priority })}`) : null),
        el("dt", { "data-i18n": "agent.waited" }), waited,
        el("dt", { "data-i18n": "agent.expires" }), countdown,
        offer.call.note ? [el("dt", { "data-i18n": "agent.note" }), el("dd", { id: "offer-note" }, offer.call.note)] : null),
      el("div", { class: "actions" }, accept, decline),
    );
    const tick = () => {
      const elapsed = (performance.now() - offer.receivedAt) / 1000;
      waited.textContent = duration(Math.round(offer.call.waited_s + elapsed));
      countdown.textContent = duration(Math.max(0, Math.ceil(offer.expires_in_s - elapsed)));
    };
    tick();
    ticker = setInterval(tick, 250);
    translate(ui.offer);
    accept.focus();
  }

  let talkTicker = null;
  function renderCall() {
    clearInterval(talkTicker);
    ui.call.replaceChildren(el("h2", { id: "call-title", "data-i18n": "agent.call" }));
    const call = state.call;
    if (!call) {
      ui.call.hidden = true;
      return;
    }
    // Reconnected with the call in hand: the talk time counts from this console's first sight.
    call.since ??= performance.now();
    const talk = el("output", { id: "talk-time" });
    const tickTalk = () => {
      const seconds = Math.floor((performance.now() - call.since) / 1000);
      talk.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    };
    tickTalk();
    talkTicker = setInterval(tickTalk, 1000);
    ui.call.hidden = false;
    if (call.dialing) {
      ui.call.append(el("p", {}, `#${call.id} · ${cityName(call.city, lang())} · `,
        el("span", { id: "call-caller" }, call.caller || ""), " ",
        el("span", { id: "call-kind", class: "pill warn", "data-i18n": "agent.callback" })),
      el("p", { id: "dialing", role: "status", "data-i18n": "agent.dialing" }));
      translate(ui.call);
      return;
    }
    const category = el("select", { id: "category", name: "category" },
      el("option", { value: "" }, t("agent.pick")),
      state.categories.map((c) => el("option", { value: c.code }, `${c.code} ${lang() === "en" && c.name_en ? c.name_en : c.name}`)));
    const disposition = el("fieldset", { id: "disposition" }, el("legend", { "data-i18n": "agent.disposition" }),
      ["answered", "transferred"].map((value) => el("label", {},
        el("input", { type: "radio", name: "disposition", value, checked: value === "answered" }),
        el("span", { "data-i18n": `agent.${value}` }))));
    const summary = el("textarea", { id: "summary", name: "summary", rows: 3, maxlength: 4000 });
    const used = el("output", { id: "script-used" }, state.usedScript ? state.usedScript.key : t("agent.none"));
    const complete = el("button", { type: "submit", id: "complete", class: "primary", "data-i18n": "agent.complete" });
    const form = el("form", { class: "ticket" },
      el("p", {}, `#${call.id} · ${cityName(call.city, lang())} · `, el("span", { id: "call-caller" }, call.caller || ""),
        call.channel ? ` · ${t(`channel.${call.channel}`)}` : "",
        call.priority > 0 ? ` · ${t("agent.priority", { n: call.priority })}` : "",
        " · ", el("span", { "data-i18n": "agent.talk" }), " ", talk),
      el("label", { for: "category", "data-i18n": "agent.category" }), category,
      disposition,
      el("label", { for: "summary", "data-i18n": "agent.summary" }), summary,
      el("p", {}, el("span", { "data-i18n": "agent.script_used" }), ": ", used),
      complete);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const message = {
        type: "complete", call_id: call.id,
        disposition: form.querySelector("input[name=disposition]:checked").value,
        summary: summary.value || undefined, category_code: category.value || undefined,
      };
      if (state.usedScript) {
        message.script_version = state.usedScript.version;
        message.script_key = state.usedScript.key;
      }
      send(message);
    });
    ui.call.append(form, transferForm(call));
    translate(ui.call);
  }

  // Send the call in hand to a city's queue with a note: back to its own city (a helper's local
  // question), or to the city the matter belongs to.
  function transferForm(call) {
    // The call's own city is `host` (a helper's only way back to it); never one's own city's call
    // to one's own city.
    const others = Object.keys(CITY_NAMES).filter((code) => code !== call.city);
    const to = el("select", { id: "transfer-to", name: "transfer-to" },
      call.city !== who.city ? el("option", { value: "host" }, t("agent.transfer_host", { city: cityName(call.city, lang()) })) : null,
      others.map((code) => el("option", { value: code }, cityName(code, lang()))));
    const note = el("input", { id: "transfer-note", name: "transfer-note", required: true, maxlength: 500 });
    const form = el("form", { class: "transfer" },
      el("h3", { "data-i18n": "agent.transfer" }),
      el("label", { for: "transfer-to", "data-i18n": "agent.transfer_to" }), to,
      el("label", { for: "transfer-note", "data-i18n": "agent.transfer_note" }), note,
      el("button", { type: "submit", id: "transfer", "data-i18n": "agent.transfer_send" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!note.value.trim()) return;
      send({ type: "transfer", call_id: call.id, to: to.value, note: note.value.trim() });
    });
    return form;
  }

  // --- scripts ----------------------------------------------------------------------------------
  function chooseScriptsCity() {
    const host = [...state.surges.values()][0];
    const city = state.call?.city || state.offer?.call.city || state.reading || host || who.city;
    if (city !== state.scriptsCity) {
      state.scriptsCity = city;
      state.changed = new Set();
      loadScripts(false);
    }
  }

  const search = el("input", { id: "script-search", type: "search", "data-i18n-label": "agent.search" });
  const badge = el("span", { id: "script-version", class: "pill" });
  const list = el("ol", { id: "script-entries", class: "entries" });
  const gap = buildGapForm();
  const answeredGaps = el("ul", { id: "gap-answers", class: "gap-answers", "aria-live": "polite" });
  ui.scripts.append(
    el("h2", { id: "scripts-title" }, el("span", { "data-i18n": "agent.scripts" }), " ", el("span", { id: "scripts-city" }), " ", badge,
      " ", gap.open),
    gap.form, answeredGaps, search, list);

  // --- knowledge gaps: a question of the call in hand that the scripts do not answer ----------
  function buildGapForm() {
    const open = el("button", { type: "button", id: "gap-open", class: "small", "data-i18n": "agent.gap", hidden: true });
    const heading = el("h3", { id: "gap-title" });
    const question = el("textarea", { id: "gap-question", name: "question", rows: 2, maxlength: 500, required: true });
    const note = el("input", { id: "gap-note", name: "note", maxlength: 1000, autocomplete: "off" });
    const cancel = el("button", { type: "button", id: "gap-cancel", "data-i18n": "agent.gap_cancel" });
    const form = el("form", { id: "gap-form", class: "gap-form", "aria-labelledby": "gap-title", hidden: true },
      heading,
      el("label", { for: "gap-question", "data-i18n": "agent.gap_question" }), question,
      el("label", { for: "gap-note", "data-i18n": "agent.gap_note" }), note,
      el("div", { class: "actions" },
        el("button", { type: "submit", id: "gap-send", class: "primary", "data-i18n": "agent.gap_send" }), cancel));
    open.addEventListener("click", () => {
      form.hidden = false;
      question.focus();
    });
    cancel.addEventListener("click", closeGap);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const callId = gapCall();
      if (!question.value.trim() || callId === null) return;
      send({ type: "gap", call_id: callId, question: question.value.trim(), note: note.value.trim() || undefined });
    });
    return { open, form, heading, question, note };
  }

  // The call a gap may be raised on: the one connected, or the one being wrapped up.
  function gapCall() {
    if (state.call && !state.call.dialing) return state.call.id;
    return state.wrapUp ? state.wrapUp.callId : null;
  }

  function renderGap() {
    const callId = gapCall();
    gap.open.hidden = callId === null;
    if (callId === null) gap.form.hidden = true;
    else gap.heading.textContent = t("agent.gap_title", { id: callId });
  }

  function closeGap() {
    gap.form.hidden = true;
    gap.form.reset();
  }

  function showGapAnswered(frame) {
    const text = () => t("agent.gap_answered", { city: cityName(frame.city, lang()), v: frame.version, q: frame.question });
    answeredGaps.prepend(el("li", { class: "notice ok", dataset: { version: frame.version } }, text()));
    banner(text, "info");
  }
  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(renderEntries, 200);
  });

  async function loadScripts(highlight) {
    const city = state.scriptsCity;
    try {
      state.book = await get(`/cities/${city}/scripts`);
    } catch (error) {
      state.book = { city, version: 0, entries: [], error: error.message };
    }
    if (!highlight) state.changed = new Set();
    await renderEntries();
    shown(state.book);
  }

  async function renderEntries() {
    const book = state.book;
    if (!book) return;
    document.getElementById("scripts-city").textContent = cityName(book.city, lang());
    badge.textContent = t("agent.version", { v: book.version });
    badge.dataset.version = book.version;
    let entries = book.entries;
    const query = search.value.trim();
    if (query) {
      try {
        const found = await get(`/cities/${book.city}/scripts/search?q=${encodeURIComponent(query)}`);
        entries = found.hits.map((hit) => hit.entry);
      } catch (_) { entries = []; }
    }
    list.replaceChildren(...entries.map((entry) => {
      const use = el("button", { type: "button", class: "small cite", hidden: !citable() }, t("agent.use"));
      use.addEventListener("click", () => {
        state.usedScript = { key: entry.key, version: book.version };
        const output = document.getElementById("script-used");
        if (output) output.textContent = entry.key;
      });
      return el("li", { class: state.changed.has(entry.key) ? "entry changed" : "entry", dataset: { key: entry.key } },
        el("h3", {}, entry.title, " ", el("small", {}, entry.category_code || "")),
        el("p", { class: "question" }, entry.question),
        el("p", { class: "answer" }, entry.answer),
        use);
    }));
    if (!entries.length) list.append(el("li", { class: "muted" }, t("agent.no_entries")));
  }

  // --- keyboard: A accepts, D declines ------------------------------------------------------------
  function onKey(event) {
    if (!state.offer || event.target.matches("input, textarea, select")) return;
    const key = event.key.toLowerCase();
    if (key === "a") send({ type: "accept", offer_id: state.offer.offer_id });
    if (key === "d") send({ type: "decline", offer_id: state.offer.offer_id });
  }
  document.addEventListener("keydown", onKey);
  const stopTranslating = onLanguage(() => {
    render();
    renderEntries();
    renderRequired();
    if (state.surgeText) ui.surge.textContent = state.surgeText();
  });

  get("/categories").then((categories) => {
    state.categories = categories;
    render();
  }).catch(() => {});
  renderConnection(false);
  render();
  loadScripts(false);
  connect();

  return () => {
    state.closed = true;
    clearInterval(ticker);
    clearInterval(wrapTicker);
    clearInterval(talkTicker);
    document.removeEventListener("keydown", onKey);
    stopTranslating();
    ui.notices.stop();
    if (state.socket) state.socket.close(1000, "logout"); // a goodbye: offline, not lost
  };
}
