"""Open live connections, a Prometheus gauge summed over the live processes (`livesum`: a
process that stops takes its connections with it, see `analytics/metrics.py`)."""

from __future__ import annotations

from prometheus_client import Gauge

LIVE_CONNECTIONS = Gauge(
    "livestage_live_connections",
    "Open live connections: server-sent event streams and local-provider signalling sockets.",
    ["kind"],
    multiprocess_mode="livesum",
)
SSE_CONNECTIONS = LIVE_CONNECTIONS.labels("sse")
SIGNALLING_CONNECTIONS = LIVE_CONNECTIONS.labels("signalling")
