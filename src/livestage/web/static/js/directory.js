// The directory of live streams (/live, home): each card's viewer count follows the stream's
// live updates, a stream that ends leaves the list, streams that start are added, and
// local-provider cards show the latest still the broadcaster's page sent (others keep their
// placeholder).
import { request } from "./api.js";
import { follow } from "./live-updates.js";

// A browser opens at most 6 HTTP/1.1 connections per site: the first cards get event streams,
// the rest ask for their state now and then, leaving connections for the page's other requests.
const FOLLOWED = 4;
const POLL_MS = 10_000;
const PICTURE_MS = 5_000;
// How often the list itself is compared with who is live (new streams, missed ends).
const LIST_MS = 10_000;
const EMPTY = "Nobody is live right now. Come back soon.";

let list = document.querySelector('[data-testid="live-list"]');
let stops = [];

function update(card, state) {
  if (state.stream_id && state.stream_id !== card.dataset.streamId) return;
  if (state.status === "ended" || state.status === "failed" || state.status === "offline") {
    card.remove();
    if (!list.querySelector("li.stream-card") && !list.querySelector("li.empty")) {
      list.append(Object.assign(document.createElement("li"), { className: "empty", textContent: EMPTY }));
    }
    return;
  }
  card.querySelector('[data-testid="card-viewers"]').textContent = `${state.viewers} watching`;
}

function refreshPicture(card) {
  if (!card.isConnected) return;
  const img = card.querySelector("img");
  const next = new Image();
  next.addEventListener("load", () => {
    img.src = next.src;
    img.classList.remove("hidden");
    card.querySelector(".placeholder").classList.add("hidden");
  });
  next.src = `/api/watch/${encodeURIComponent(card.dataset.handle)}/thumbnail.jpg?at=${Date.now()}`;
}

function start() {
  const cards = [...list.querySelectorAll("li.stream-card")];
  stops = cards.flatMap((card, index) => {
    const handle = card.dataset.handle;
    const timers = [];
    let followed = null;
    if (index < FOLLOWED) {
      followed = follow(handle, (state) => update(card, state));
    } else {
      const path = `/api/live/${encodeURIComponent(handle)}`;
      timers.push(setInterval(() => request("GET", path).then((s) => update(card, s), () => {}), POLL_MS));
    }
    if (card.dataset.provider === "local") {
      refreshPicture(card);
      timers.push(setInterval(() => refreshPicture(card), PICTURE_MS));
    }
    return [() => (followed && followed.close(), timers.forEach(clearInterval))];
  });
}

// When who is live differs from the cards shown, the list is read again from this page's own
// HTML (parsed, never run) and its cards followed afresh.
async function compare() {
  const live = await request("GET", "/api/live").catch(() => null);
  if (!live) return;
  const shown = [...list.querySelectorAll("li.stream-card")].map((c) => c.dataset.handle).sort();
  const now = live.map((s) => s.handle).sort();
  if (shown.join(" ") === now.join(" ")) return;
  const html = await fetch(location.pathname, { headers: { accept: "text/html" } }).then((r) => r.text());
  const fresh = new DOMParser().parseFromString(html, "text/html").querySelector('[data-testid="live-list"]');
  if (!fresh) return;
  stops.forEach((stop) => stop());
  list.replaceWith(fresh);
  list = fresh;
  start();
}

start();
setInterval(compare, LIST_MS);
