// The directory of live streams (/live, home): each card's viewer count follows the stream's
// live updates, a stream that ends leaves the list, and local-provider cards show the latest
// still the broadcaster's page sent (others keep their placeholder).
import { request } from "./api.js";
import { follow } from "./live-updates.js";

// A browser opens at most 6 HTTP/1.1 connections per site: the first cards get event streams,
// the rest ask for their state now and then, leaving connections for the page's other requests.
const FOLLOWED = 4;
const POLL_MS = 10_000;
const PICTURE_MS = 5_000;

const list = document.querySelector('[data-testid="live-list"]');
const cards = [...list.querySelectorAll("li.stream-card")];

function update(card, state) {
  if (state.stream_id && state.stream_id !== card.dataset.streamId) return;
  if (state.status === "ended" || state.status === "failed" || state.status === "offline") {
    card.remove();
    if (!list.querySelector("li.stream-card")) {
      list.append(Object.assign(document.createElement("li"), { className: "empty", textContent: "Nobody is live right now. Come back soon." }));
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

cards.forEach((card, index) => {
  const handle = card.dataset.handle;
  if (index < FOLLOWED) {
    follow(handle, (state) => update(card, state));
  } else {
    setInterval(() => request("GET", `/api/live/${encodeURIComponent(handle)}`).then((s) => update(card, s), () => {}), POLL_MS);
  }
  if (card.dataset.provider === "local") {
    refreshPicture(card);
    setInterval(() => refreshPicture(card), PICTURE_MS);
  }
});
