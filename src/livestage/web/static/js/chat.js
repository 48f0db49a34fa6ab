// The chat beside a live stream (templates/_chat.html), on the watch page and the influencer's
// live page.
//
// History comes with the page's first GET and again with the event stream's `history` event on
// every (re)connect, which replaces the list: what was missed while disconnected is never
// patched in piecemeal. Messages are written with textContent only, so markup in a message is
// shown as text and never runs.
//
// startChat(handle, {onRestricted(kind, until), onNames(map)}) -> {names, close()}
// (names: identity -> the name they last chatted under, for the participants list)
import { request, show } from "./api.js";

const NAME_KEY = "livestage.chatName";
const $ = (id) => document.getElementById(id);
// Within this many pixels of the bottom counts as "reading the latest".
const NEAR_BOTTOM = 40;

export function startChat(handle, { onRestricted = () => {}, onNames = () => {} } = {}) {
  const base = `/api/watch/${encodeURIComponent(handle)}/chat`;
  const list = $("chat-messages");
  const form = $("chat-form");
  const notice = $("chat-notice");
  const latest = $("chat-latest");
  let you = { identity: null, name: null, can_moderate: false, banned: false, restricted_until: null };
  let blockedUntil = 0;
  let noticeTimer = null;
  let source = null;
  let closed = false;
  const names = new Map();

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM;
  }

  function scrollToEnd() {
    list.scrollTop = list.scrollHeight;
    show(latest, false);
  }

  function say(text, { sticky = false } = {}) {
    clearTimeout(noticeTimer);
    notice.textContent = text;
    show(notice, Boolean(text));
    if (text && !sticky) noticeTimer = setTimeout(() => say(""), 8000);
  }

  function button(text, onClick) {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
    b.className = "link chat-action";
    b.addEventListener("click", onClick);
    return b;
  }

  function item(message) {
    const li = document.createElement("li");
    li.className = `chat-message role-${message.author.role}`;
    li.dataset.id = message.id;
    li.dataset.identity = message.author.identity;
    li.dataset.testid = "chat-message";
    const author = Object.assign(document.createElement("span"), { className: "chat-author" });
    author.textContent = message.author.name;
    li.append(author);
    if (message.author.role !== "viewer") {
      const role = Object.assign(document.createElement("span"), { className: "badge chat-role" });
      role.textContent = message.author.role === "influencer" ? "creator" : message.author.role;
      li.append(" ", role);
    }
    const body = Object.assign(document.createElement("span"), { className: "chat-body" });
    body.textContent = message.body;
    body.dataset.testid = "chat-body";
    li.append(" ", body);
    if (you.can_moderate) li.append(moderation(message));
    return li;
  }

  function moderation(message) {
    const tools = Object.assign(document.createElement("span"), { className: "chat-tools" });
    tools.append(button("Delete", () => moderate(() => request("DELETE", `/api/chat/messages/${encodeURIComponent(message.id)}`))));
    if (message.author.role === "viewer") {
      const restrict = (kind) => {
        const minutes = Number($("chat-timeout-minutes").value);
        const body = kind === "timeout" ? { identity: message.author.identity, kind, minutes } : { identity: message.author.identity, kind };
        return moderate(() => request("POST", `${base}/restrictions`, body), `${message.author.name}: ${kind === "ban" ? "banned" : `timed out for ${minutes} min`}.`);
      };
      tools.append(button("Time out", () => restrict("timeout")), button("Ban", () => restrict("ban")));
    }
    return tools;
  }

  async function moderate(call, done) {
    try {
      await call();
      if (done) say(done);
    } catch (error) {
      say(error.message);
    }
  }

  function remember(message) {
    names.set(message.author.identity, message.author.name);
  }

  function append(message) {
    if (list.querySelector(`li[data-id="${CSS.escape(message.id)}"]`)) return;
    const follow = nearBottom();
    remember(message);
    list.append(item(message));
    if (follow) scrollToEnd();
    else show(latest, true);
    onNames(names);
  }

  function replace(messages) {
    messages.forEach(remember);
    list.replaceChildren(...messages.map(item));
    scrollToEnd();
    onNames(names);
  }

  function showSlowMode(seconds) {
    $("chat-slow").textContent = seconds ? `Slow mode: one message every ${seconds} s` : "";
    show($("chat-slow"), Boolean(seconds));
    $("chat-slow-mode").value = String(seconds);
  }

  function needsName() {
    return !you.name && !localStorage.getItem(NAME_KEY);
  }

  function renderForm() {
    show($("chat-name-field"), needsName());
    form.elements.body.disabled = you.banned;
    $("chat-send").disabled = you.banned;
  }

  function restricted(kind, until) {
    if (kind === "ban") {
      you.banned = true;
      say("You were banned from this stream by its moderators: you cannot chat or watch.", { sticky: true });
      renderForm();
    } else {
      blockedUntil = until ? Date.parse(until) : 0;
      if (blockedUntil <= Date.now()) return;
      say(`You are timed out: you can write again at ${new Date(blockedUntil).toLocaleTimeString()}.`, { sticky: true });
      setTimeout(() => Date.now() >= blockedUntil && say(""), blockedUntil - Date.now() + 100);
    }
    onRestricted(kind, until);
  }

  function connect() {
    source = new EventSource(`${base}/events`);
    const on = (name, handler) =>
      source.addEventListener(name, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        handler(data);
      });
    on("history", (data) => {
      replace(data.messages || []);
      showSlowMode(data.slow_mode_seconds || 0);
    });
    on("message", append);
    on("deleted", (data) => list.querySelector(`li[data-id="${CSS.escape(data.id)}"]`)?.remove());
    on("settings", (data) => showSlowMode(data.slow_mode_seconds || 0));
    on("restricted", (data) => {
      if (data.identity === you.identity) restricted(data.kind, data.until);
    });
  }

  async function send(event) {
    event.preventDefault();
    const body = form.elements.body.value.trim();
    if (!body) return;
    if (Date.now() < blockedUntil) {
      say(`You are timed out: you can write again at ${new Date(blockedUntil).toLocaleTimeString()}.`);
      return;
    }
    // Viewers send their name with every message (signed-in users post as themselves: the
    // server ignores it).
    const name = (form.elements.name.value || you.name || localStorage.getItem(NAME_KEY) || "").trim();
    if (!name) {
      say("Choose a name for the chat first.");
      form.elements.name.focus();
      return;
    }
    $("chat-send").disabled = true;
    try {
      const message = await request("POST", base, { body, name });
      if (form.elements.name.value.trim()) localStorage.setItem(NAME_KEY, name);
      form.elements.body.value = "";
      say("");
      renderForm();
      append(message);
      scrollToEnd();
    } catch (error) {
      explain(error);
    } finally {
      $("chat-send").disabled = you.banned;
    }
  }

  function explain(error) {
    const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
    if (error.code === "chat_rate_limited") say(`You are sending messages too fast.${wait}`);
    else if (error.code === "slow_mode") say(`Slow mode is on.${wait}`);
    else if (error.code === "chat_banned") restricted("ban", null);
    else if (error.code === "chat_timed_out") say(error.message, { sticky: true });
    else if (error.code === "not_live") say("The stream is not live: the chat is closed.");
    else say(error.message);
  }

  async function load() {
    try {
      const state = await request("GET", base);
      you = state.you;
      show($("chat-moderation"), you.can_moderate);
      if (!source) replace(state.messages || []);
      showSlowMode(state.slow_mode_seconds || 0);
      renderForm();
      if (you.banned) restricted("ban", null);
      else if (you.restricted_until) restricted("timeout", you.restricted_until);
    } catch (error) {
      say(error.message, { sticky: true });
    }
    if (!closed) connect();
  }

  // The broadcaster's page starts a chat for each stream it goes live with: closing removes
  // this one's listeners.
  const listening = new AbortController();
  const signal = listening.signal;
  form.addEventListener("submit", (event) => event.preventDefault());
  list.addEventListener("scroll", () => nearBottom() && show(latest, false), { signal });
  latest.addEventListener("click", scrollToEnd, { signal });
  form.addEventListener("submit", send, { signal });
  $("chat-slow-mode").addEventListener(
    "change",
    (event) => moderate(() => request("PUT", `${base}/slow-mode`, { seconds: Number(event.target.value) })),
    { signal },
  );
  load();

  return {
    names,
    close() {
      closed = true;
      listening.abort();
      if (source) source.close();
      form.elements.body.disabled = true;
      $("chat-send").disabled = true;
    },
  };
}
