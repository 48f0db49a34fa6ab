// Live stream updates pushed by the server: server-sent events on /api/live/{handle}/events.
//
// follow(handle, onUpdate) calls onUpdate(update) with each `stream` event's JSON:
//   {stream_id, handle, status, viewers, peak, title, started_at, ended_at}
// (a creator who never streamed is {handle, status: "offline", viewers: 0, peak: 0}). The first
// event is the state right now; after that, every change. The server's counts come from provider
// webhooks, so they are authoritative. When the connection drops, EventSource reconnects by
// itself and the server starts again with the current state, so nothing is missed for good.
// Returns {close()}.
export function follow(handle, onUpdate) {
  const source = new EventSource(`/api/live/${encodeURIComponent(handle)}/events`);
  source.addEventListener("stream", (event) => {
    let update;
    try {
      update = JSON.parse(event.data);
    } catch {
      return; // not ours to crash on: wait for the next one
    }
    onUpdate(update);
  });
  return { close: () => source.close() };
}

