"""bench/results/latest.json (one flat object) and latest.md (every figure, its target, its
ratio)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    target: str = ""
    # value (or the figures) → (ratio to the target, met?)
    check: Callable[[dict[str, Any]], tuple[float, bool]] | None = None
    unit: str = ""


def _at_least(key: str, goal: float) -> Callable[[dict[str, Any]], tuple[float, bool]]:
    return lambda f: (f[key] / goal, f[key] >= goal)


def _at_most(key: str, goal: float) -> Callable[[dict[str, Any]], tuple[float, bool]]:
    return lambda f: (f[key] / goal if goal else float(f[key]), f[key] <= goal)


ROWS = [
    Row("join_rps", "Viewer join (contenders interleaved, median over rounds)", unit="req/s"),
    Row("join_rps_min", "  join, slowest round", "", unit="req/s"),
    Row("join_rps_max", "  join, fastest round", "", unit="req/s"),
    Row(
        "join_vs_floor_pyjwt",
        "  join ÷ floor: bare ASGI + PyJWT mint (same round)",
        "≥ 0.8",
        _at_least("join_vs_floor_pyjwt", 0.8),
    ),
    Row("join_vs_floor_pyjwt_min", "    lowest round", ""),
    Row("join_vs_floor_pyjwt_max", "    highest round", ""),
    Row(
        "join_vs_node_crypto",
        "  join ÷ Express signing with Node's crypto (same round)",
        "≥ 2",
        _at_least("join_vs_node_crypto", 2),
    ),
    Row("join_vs_node_crypto_min", "    lowest round", ""),
    Row("join_vs_node_crypto_max", "    highest round", ""),
    Row(
        "join_vs_node_reference",
        "  join ÷ Express + jsonwebtoken (100ms's documented sample)",
        "reported",
    ),
    Row("join_vs_floor_bare", "  join ÷ floor: bare ASGI, no token", "reported"),
    Row(
        "join_vs_ceiling",
        "  join ÷ ceiling (/healthz passes middleware the join skips)",
        "reported",
    ),
    Row("join_p50_ms", "  join p50 latency", "reported", unit="ms"),
    Row("join_p99_ms", "  join p99 latency", "reported", unit="ms"),
    Row("join_errors", "  join non-2xx / socket errors", "0", _at_most("join_errors", 0)),
    Row("join_recorded", "  join intents stored by the measured runs", "= joins served"),
    Row("join_requests", "  joins served by the measured runs", ""),
    Row("join_floor_pyjwt_rps", "Floor: bare ASGI + PyJWT, uvicorn as served", "", unit="req/s"),
    Row("join_floor_bare_rps", "Floor: bare ASGI, no token", "", unit="req/s"),
    Row("join_node_crypto_rps", "Express + Node crypto HMAC", "", unit="req/s"),
    Row("join_node_reference_rps", "Express + jsonwebtoken (documented sample)", "", unit="req/s"),
    Row("join_ceiling_rps", "Ceiling: GET /healthz, same server", "", unit="req/s"),
    Row("join_ceiling_vs_floor_bare", "  ceiling ÷ bare ASGI floor", "reported"),
    Row("join_baseline_rps", "Baseline checkout (--baseline), same rounds", "", unit="req/s"),
    Row(
        "join_vs_baseline",
        "  join ÷ baseline (same round)",
        "≥ 0.9",
        _at_least("join_vs_baseline", 0.9),
    ),
    Row("join_loadavg", "  load average, start → end", ""),
    Row("webhook_eps", "Webhook ingestion (acked once durable)", unit="ev/s"),
    Row("webhook_eps_min", "  slowest round", "", unit="ev/s"),
    Row("webhook_eps_max", "  fastest round", "", unit="ev/s"),
    Row(
        "webhook_vs_floor",
        "  webhooks ÷ INSERT … ON CONFLICT floor (same round)",
        "≥ 0.3",
        _at_least("webhook_vs_floor", 0.3),
    ),
    Row("webhook_vs_floor_min", "    lowest round", ""),
    Row("webhook_vs_floor_max", "    highest round", ""),
    Row("webhook_floor_eps", "  floor: plain INSERT, batches of 32, one writer", "", unit="ev/s"),
    Row("webhook_vs_ceiling", "  webhooks ÷ ceiling (same round)", "reported"),
    Row("webhook_p99_ms", "  webhook p99 latency", "reported", unit="ms"),
    Row("webhook_ceiling_rps", "  ceiling, same load generator", "", unit="req/s"),
    Row("webhook_acked", "  event ids acknowledged", ""),
    Row("webhook_refused", "  event ids answered non-2xx", "reported"),
    Row("webhook_stored", "  rows stored for the ids sent", "= acknowledged"),
    Row("webhook_lost", "  acknowledged ids not stored", "0", _at_most("webhook_lost", 0)),
    Row("webhook_doubled", "  ids stored more than once", "0", _at_most("webhook_doubled", 0)),
    Row("webhook_stored_unacked", "  ids stored but not acknowledged", "reported"),
    Row("webhook_unprocessed", "  left unprocessed", "0", _at_most("webhook_unprocessed", 0)),
    Row("webhook_backlog_drain_s", "  longest drain after a round", "", unit="s"),
    Row("webhooks_loadavg", "  load average, start → end", ""),
    Row(
        "golive_overhead_p50_ms",
        "Go-live own overhead p50 (0 ms provider)",
        "",
        unit="ms",
    ),
    Row(
        "golive_overhead_p99_ms",
        "Go-live own overhead p99 (0 ms provider)",
        "≤ 15 ms",
        _at_most("golive_overhead_p99_ms", 15),
        "ms",
    ),
    Row("golive_overhead_max_ms", "  overhead max (0 ms provider)", "", unit="ms"),
    Row("golive_samples", "  samples (0 ms provider)", "≥ 1,000 (full run)"),
    Row("golive_overhead_100ms_p50_ms", "  overhead p50, 100 ms provider", "", unit="ms"),
    Row(
        "golive_overhead_100ms_p99_ms",
        "  overhead p99, 100 ms provider",
        "≤ 15 ms",
        _at_most("golive_overhead_100ms_p99_ms", 15),
        "ms",
    ),
    Row("golive_overhead_100ms_max_ms", "  overhead max, 100 ms provider", "", unit="ms"),
    Row("golive_samples_100ms", "  samples, 100 ms provider", ""),
    Row("golive_loadavg", "  load average, start → end", ""),
    Row("golive_first_p50_ms_at_100ms", "  first go-live p50, 100 ms provider", "", unit="ms"),
    Row("golive_repeat_p50_ms_at_100ms", "  repeat go-live p50, 100 ms provider", "", unit="ms"),
    Row("golive_first_sequential_calls", "  sequential provider calls, first", "reported"),
    Row(
        "golive_repeat_sequential_calls",
        "  sequential provider calls, repeat",
        "≤ 1",
        _at_most("golive_repeat_sequential_calls", 1),
    ),
    Row("golive_first_total_calls", "  provider calls in all, first", ""),
    Row("golive_repeat_total_calls", "  provider calls in all, repeat", ""),
    Row("fanout_clients", "Fan-out: connected SSE viewers", "5,000 (full run)"),
    Row("fanout_p50_ms", "  delivery p50", "", unit="ms"),
    Row("fanout_p99_ms", "  delivery p99", "≤ 1 s", _at_most("fanout_p99_ms", 1000), "ms"),
    Row("fanout_max_ms", "  delivery max", "", unit="ms"),
    Row("fanout_rss_mb", "  server RSS", "≤ 300 MB", _at_most("fanout_rss_mb", 300), "MB"),
    Row("fanout_rss_idle_mb", "  server RSS before the viewers", "", unit="MB"),
    Row("fanout2_clients", "Fan-out over 2 processes + Redis (PostgreSQL)", "5,000 (full run)"),
    Row("fanout2_p50_ms", "  delivery p50", "", unit="ms"),
    Row("fanout2_p99_ms", "  delivery p99", "≤ 1 s", _at_most("fanout2_p99_ms", 1000), "ms"),
    Row("fanout2_max_ms", "  delivery max", "", unit="ms"),
    Row("fanout2_rss_a_mb", "  RSS, process receiving the webhook", "", unit="MB"),
    Row("fanout2_rss_b_mb", "  RSS, the other process", "", unit="MB"),
    Row("storm_connected", "SSE storm: pages connected (within the window)", "= clients"),
    Row("storm_clients", "  pages opening, evenly paced", ""),
    Row("storm_connect_failed", "  connects failed (none answered within 30 s)", "0"),
    Row("storm_connect_window_s", "  seconds until every connect was answered", "", unit="s"),
    Row("storm_connect_p50_ms", "  connect → first event p50", "", unit="ms"),
    Row("storm_connect_p99_ms", "  connect → first event p99", "reported", unit="ms"),
    Row("storm_push_p50_ms", "  one change per stream: push p50", "", unit="ms"),
    Row(
        "storm_push_p99_ms",
        "  push p99, every page",
        "≤ 1 s",
        _at_most("storm_push_p99_ms", 1000),
        "ms",
    ),
    Row("storm_push_max_ms", "  push max", "", unit="ms"),
    Row(
        "storm_push_missed",
        "  pages that never saw the change",
        "0",
        _at_most("storm_push_missed", 0),
    ),
    Row("storm_webhooks_failed", "  change webhooks not acknowledged", "0"),
    Row("storm_rss_mb", "  server RSS, peak", "≤ 300 MB", _at_most("storm_rss_mb", 300), "MB"),
    Row("storm_rss_idle_mb", "  server RSS before the storm", "", unit="MB"),
    Row("storm_loadavg", "  load average, start → end", ""),
    Row(
        "backlog_apply_eps",
        "Backlog apply (stored events → figures current)",
        "≥ 5,000 ev/s",
        _at_least("backlog_apply_eps", 5000),
        "ev/s",
    ),
    Row("backlog_apply_eps_min", "  apply, slowest repeat", "", unit="ev/s"),
    Row("backlog_apply_eps_max", "  apply, fastest repeat", "", unit="ev/s"),
    Row("backlog_store_eps", "  storing the same events (inbox group commits)", "", unit="ev/s"),
    Row("backlog_store_eps_min", "  store, slowest repeat", "", unit="ev/s"),
    Row("backlog_store_eps_max", "  store, fastest repeat", "", unit="ev/s"),
    Row(
        "backlog_apply_vs_store",
        "  apply ÷ store (same run)",
        "≥ 0.4",
        _at_least("backlog_apply_vs_store", 0.4),
    ),
    Row("backlog_apply_vs_store_min", "  apply ÷ store, lowest repeat", ""),
    Row("backlog_apply_vs_store_max", "  apply ÷ store, highest repeat", ""),
    Row("backlog_unprocessed", "  left unprocessed", "0", _at_most("backlog_unprocessed", 0)),
    Row(
        "backlog_stale_streams",
        "  streams with figures owed",
        "0",
        _at_most("backlog_stale_streams", 0),
    ),
    Row(
        "backlog_peers_wrong",
        "  peer rows missing, doubled or left open",
        "0",
        _at_most("backlog_peers_wrong", 0),
    ),
    Row(
        "crowd_apply_eps",
        "Flash crowd on one stream with 100,000 past peers (--quick 10,000): apply",
        "reported",
        unit="ev/s",
    ),
    Row("crowd_apply_eps_min", "  apply, slowest repeat", "", unit="ev/s"),
    Row("crowd_apply_eps_max", "  apply, fastest repeat", "", unit="ev/s"),
    Row("crowd_apply_vs_store", "  apply ÷ store (same run)", ""),
    Row("crowd_missed", "  events not applied", "0", _at_most("crowd_missed", 0)),
    Row(
        "chat_fanout_p99_ms",
        "Chat: one message to N pages (2 processes; SQLite 1), p99",
        "≤ 1 s",
        _at_most("chat_fanout_p99_ms", 1000),
        "ms",
    ),
    Row(
        "chat_rate_per_s",
        "Chat: sustained posting into one stream",
        "≥ 200/s",
        _at_least("chat_rate_per_s", 200),
        "msg/s",
    ),  # fmt: skip
    Row(
        "chat_rate_last_post_late_ms",
        "  the last post sent after its scheduled time",
        "reported",
        unit="ms",
    ),
    Row(
        "chat_rate_last_answer_ms",
        "  the last post answered after it was sent",
        "reported",
        unit="ms",
    ),
    Row("chat_rate_answer_p99_ms", "  posts answered, p99", "reported", unit="ms"),
    Row("chat_capacity_per_s", "  kept up with at 300 msg/s offered", "reported", unit="msg/s"),
    Row(
        "chat_capacity_last_post_late_ms",
        "    its last post sent after its scheduled time",
        "reported",
        unit="ms",
    ),
    Row("chat_rate_lost", "  messages lost", "0", _at_most("chat_rate_lost", 0)),
    Row(
        "chat_rate_reordered_pages",
        "  pages that saw another order",
        "0",
        _at_most("chat_rate_reordered_pages", 0),
    ),
    Row("chat_rate_orders", "  distinct orders seen", "1", _at_most("chat_rate_orders", 1)),
    Row(
        "growth_worst_ratio",
        "Cost growth, worst page or list API: p50 at 100,000 rows ÷ at 10 (--quick 20,000), "
        "sizes interleaved",
        "≤ 2",
        _at_most("growth_worst_ratio", 2),
    ),
    *(
        Row(f"growth_{name}_ratio", f"  {label}", "")
        for name, label in (
            ("admin_streams", "/admin/streams"),
            ("admin_streams_api", "/api/admin/streams?limit=50"),
            ("admin_stream", "/admin/streams/{id}, a stream with as many peers as rows"),
            ("admin_stream_api", "/api/admin/streams/{id}"),
            ("admin_audit", "/admin/audit"),
            ("admin_audit_api", "/api/admin/audit?limit=50"),
            ("my_streams", "/influencer/streams"),
            ("my_streams_api", "/api/streams/mine?limit=50"),
        )
    ),
]


def flatten(by_db: dict[str, dict[str, Any]], *, primary: str) -> dict[str, Any]:
    """The primary variant's figures unprefixed (the contract's keys), every variant prefixed."""
    flat: dict[str, Any] = dict(by_db[primary])
    for kind, figures in by_db.items():
        flat.update({f"{kind}_{key}": value for key, value in figures.items()})
    return {key: _rounded(value) for key, value in flat.items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3 if abs(value) < 10 else 1)
    return value


def _show(value: Any, unit: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".strip()


def markdown(result: dict[str, Any], by_db: dict[str, dict[str, Any]], kinds: list[str]) -> str:
    lines = [
        "# livestage performance bench",
        "",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        f"- mode: {result['mode']}: medians of {result['repeats']} runs of "
        f"{result['seconds_per_run']:g} s each (the join: {result.get('join_rounds', '-')} "
        "rounds, every contender once per round); contenders interleaved, ratios taken "
        "within a round",
        "- servers (livestage, one uvicorn worker; PostgreSQL; emulator; Node peers; Python "
        "floors) on core 0, load generators (wrk, Python asyncio) on core 1",
        f"- reproduce: `.venv/bin/python -m bench{' --quick' if result['mode'] == 'quick' else ''}"
        f" --db {'both' if len(kinds) > 1 else kinds[0]}`",
        "",
        "Ratio is value ÷ target (≥ 1 is good for floors, ≤ 1 for ceilings).",
        "",
    ]
    header = "| Figure | " + " | ".join(f"{k}" for k in kinds) + " | Target | Ratio | Met |"
    lines += [header, "|" + "---|" * (len(kinds) + 4)]
    for row in ROWS:
        measured = [k for k in kinds if row.key in by_db[k]]
        if not measured:
            continue
        values = " | ".join(
            _show(by_db[k][row.key], row.unit) if k in measured else "—" for k in kinds
        )
        ratio, met = "", ""
        if row.check is not None:
            checks = [row.check(by_db[k]) for k in measured]
            ratio = " / ".join(f"{r:.2f}" for r, _ in checks)
            met = " / ".join("yes" if ok else "**no**" for _, ok in checks)
        lines.append(f"| {row.label} | {values} | {row.target} | {ratio} | {met} |")
    failed = [(k, key, v) for k in kinds for key, v in by_db[k].items() if key.endswith("_error")]
    if failed:
        lines += ["", "Scenarios that failed (their figures are missing above):", ""]
        lines += [f"- {k}, {key.removesuffix('_error')}: {v}" for k, key, v in failed]
    return "\n".join(lines) + "\n"
