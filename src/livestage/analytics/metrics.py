"""What `/metrics` answers: the product's own figures, right with any number of processes.

A scrape reaches one process of many (`uvicorn --workers N`). So each scrape builds a fresh
registry holding

- the figures of the whole cluster, read from the database now: open streams and their viewers;
- the counters, histograms and gauges every package keeps (`tracking/metrics.py`,
  `providers/hms/metrics.py`, `web/metrics.py`): with `PROMETHEUS_MULTIPROC_DIR` set,
  prometheus_client's multiprocess mode sums them over every process from the files each
  writes there; otherwise they are this process's, with its process metrics.

prometheus_client picks where values live when it is first imported, from the environment at
that moment: `PROMETHEUS_MULTIPROC_DIR` must be set before anything imports it (`livestage
serve --workers N` sets it before starting the workers).
"""

from __future__ import annotations

import asyncio
import glob
import os
from collections.abc import Iterable, Iterator

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.streams.repository import OpenStreams, StreamRepository

log = structlog.get_logger()
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# A scrape never waits long on the database: without its figures, the rest still answers.
DATABASE_SECONDS = 3.0


async def scrape(reads: async_sessionmaker[AsyncSession]) -> bytes:
    """The exposition text for one scrape."""
    try:
        async with asyncio.timeout(DATABASE_SECONDS), reads() as session:
            figures: OpenStreams | None = await StreamRepository(session).open_figures()
    except (SQLAlchemyError, OSError, TimeoutError):
        log.warning("metrics.database_unavailable", exc_info=True)
        figures = None
    return render(figures)


def render(figures: OpenStreams | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_directory()
    if directory is not None:
        forget_dead_processes(directory)
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    if figures is not None:
        registry.register(_OpenStreamsCollector(figures))
    return generate_latest(registry)


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


def process_stopped() -> None:
    """At shutdown: this process's open connections stop counting (the `livesum` gauges)."""
    if (directory := multiprocess_directory()) is not None:
        mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def forget_dead_processes(directory: str) -> None:
    """A process killed before its shutdown (SIGKILL, out of memory) left its `livesum`
    gauges behind; drop those of every process that is gone."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = os.path.basename(path).removesuffix(".db").rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ThisProcess:
    """The default registry's collectors: this process's figures and its process metrics."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


class _OpenStreamsCollector:
    def __init__(self, figures: OpenStreams) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "livestage_streams_live", "Streams live now.", value=self.figures.live
        )
        yield GaugeMetricFamily(
            "livestage_streams_starting",
            "Streams started whose broadcaster has not joined yet.",
            value=self.figures.starting,
        )
        yield GaugeMetricFamily(
            "livestage_viewers_watching",
            "Viewers watching the open streams now.",
            value=self.figures.viewers,
        )
