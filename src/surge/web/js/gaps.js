// Knowledge gaps (口径未覆盖) in the city admin's console: the open groups of questions agents found
// the scripts do not answer, kept live by the admin stream (`gap.raised` on /ws/admin), each with a
// box to tick when the next publish answers it.
import { cityName, el, get, socketUrl } from "./api.js";
import { add, language, onLanguage, t } from "./i18n.js";

add({
  zh: {
    "gaps.title": "口径缺口", "gaps.none": "暂无待答复的口径缺口", "gaps.count": "{n} 次",
    "gaps.cities": "反馈城市：{cities}", "gaps.last": "最近 {time}", "gaps.answers": "本次发布已答复",
    "gaps.answers_label": "本次发布答复：{q}", "gaps.live": "实时", "gaps.offline": "实时连接中断，正在重连…",
    "gaps.chosen": "本次发布将答复 {n} 个口径缺口", "gaps.load_failed": "加载失败：",
  },
  en: {
    "gaps.title": "Knowledge gaps", "gaps.none": "No open knowledge gap", "gaps.count": "{n}×",
    "gaps.cities": "raised by: {cities}", "gaps.last": "last {time}", "gaps.answers": "answered by this publish",
    "gaps.answers_label": "This publish answers: {q}", "gaps.live": "live", "gaps.offline": "Live updates lost, reconnecting…",
    "gaps.chosen": "This publish answers {n} knowledge gaps", "gaps.load_failed": "Could not load:",
  },
});

// The panel for `city`; `chosen()` gives the ticked group ids, `reload()` reads the list again.
export function gapsPanel(city) {
  const state = { groups: new Map(), chosen: new Set(), socket: null, closed: false, retry: 0, error: null };
  const live = el("span", { id: "gaps-live", class: "pill" });
  const list = el("ul", { id: "gap-groups", class: "plain gaps", "aria-live": "polite" });
  const root = el("section", { id: "gaps", class: "card", "aria-labelledby": "gaps-title" },
    el("h2", { id: "gaps-title" }, el("span", { "data-i18n": "gaps.title" }), " ", live), list);
  const when = (iso) => new Date(iso).toLocaleString(language() === "en" ? "en-GB" : "zh-CN", { dateStyle: "short", timeStyle: "short" });

  function render() {
    live.textContent = t(state.socket && state.socket.readyState === WebSocket.OPEN ? "gaps.live" : "gaps.offline");
    live.className = `pill ${state.socket && state.socket.readyState === WebSocket.OPEN ? "ok" : "warn"}`;
    if (state.error) {
      list.replaceChildren(el("li", { class: "error" }, t("gaps.load_failed"), " ", state.error));
      return;
    }
    const groups = [...state.groups.values()].filter((g) => g.status === "open")
      .sort((a, b) => b.count - a.count || b.last_at.localeCompare(a.last_at));
    if (!groups.length) {
      list.replaceChildren(el("li", { class: "muted" }, t("gaps.none")));
      return;
    }
    list.replaceChildren(...groups.map((group) => {
      const box = el("input", { type: "checkbox", name: "answers-gap", value: group.id, checked: state.chosen.has(group.id),
        "aria-label": t("gaps.answers_label", { q: group.question }) });
      box.addEventListener("change", () => {
        if (box.checked) state.chosen.add(group.id);
        else state.chosen.delete(group.id);
      });
      return el("li", { class: "gap", dataset: { id: group.id, count: group.count } },
        el("p", { class: "question" }, el("strong", {}, group.question), " ", el("span", { class: "pill warn" }, t("gaps.count", { n: group.count }))),
        el("p", { class: "muted" }, t("gaps.cities", { cities: group.cities.map((code) => cityName(code, language())).join("、") }),
          " · ", t("gaps.last", { time: when(group.last_at) })),
        el("label", {}, box, " ", t("gaps.answers")));
    }));
  }

  async function reload() {
    try {
      const groups = await get(`/cities/${city}/scripts/gaps?status=open`);
      state.groups = new Map(groups.map((group) => [group.id, group]));
      state.error = null;
    } catch (error) {
      state.error = error.message;
    }
    for (const id of [...state.chosen]) if (!state.groups.has(id)) state.chosen.delete(id);
    if (!state.closed) render();
  }

  function connect() {
    const socket = new WebSocket(socketUrl("/ws/admin"));
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.retry = 0;
      reload(); // what was raised while the stream was down
    });
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "gap.raised" && frame.city === city) {
        state.groups.set(frame.group.id, frame.group);
        render();
      }
    });
    socket.addEventListener("close", (event) => {
      if (state.closed) return;
      render();
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(() => state.closed || connect(), Math.min(10000, 500 * 2 ** state.retry++));
    });
  }

  const stopTranslating = onLanguage(() => state.closed || render());
  render();
  connect();
  return {
    root,
    chosen: () => [...state.chosen],
    reload,
    stop() {
      state.closed = true;
      stopTranslating();
      if (state.socket) state.socket.close(1000);
    },
  };
}
