from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livestage.kit.db import Base, IDMixin, TimestampMixin
from livestage.models.influencer import Influencer


class StreamStatus(enum.StrEnum):
    starting = "starting"
    live = "live"
    ended = "ended"
    failed = "failed"


class StreamStrategy(enum.StrEnum):
    automatic = "automatic"
    admin_token = "admin_token"
    room_code = "room_code"


class HlsStatus(enum.StrEnum):
    starting = "starting"
    running = "running"
    stopped = "stopped"
    failed = "failed"


ACTIVE_STATUSES = (StreamStatus.starting, StreamStatus.live)
# The predicate of the index of open streams, as written in its DDL (and in an ON CONFLICT
# naming that index).
OPEN_STREAM_INDEX_WHERE = "status IN ('starting', 'live')"


class LiveStream(IDMixin, TimestampMixin, Base):
    __tablename__ = "live_streams"
    __table_args__ = (
        # At most one open stream per influencer, enforced by the database itself: this is what
        # makes Start Streaming idempotent under double clicks and several tabs.
        Index(
            "uq_live_streams_one_active_per_influencer",
            "influencer_id",
            unique=True,
            sqlite_where=text(OPEN_STREAM_INDEX_WHERE),
            postgresql_where=text(OPEN_STREAM_INDEX_WHERE),
        ),
        # Keyset pages of the stream lists (newest first): all, one creator's, one status.
        Index("ix_live_streams_created_at_id", "created_at", "id"),
        Index("ix_live_streams_influencer_created", "influencer_id", "created_at", "id"),
        Index("ix_live_streams_status_created", "status", "created_at", "id"),
    )

    influencer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("influencers.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[StreamStrategy] = mapped_column(
        Enum(StreamStrategy, native_enum=False, length=16)
    )
    status: Mapped[StreamStatus] = mapped_column(
        Enum(StreamStatus, native_enum=False, length=16), index=True
    )
    title: Mapped[str] = mapped_column(String(140))
    description: Mapped[str] = mapped_column(Text, default="")
    room_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    room_name: Mapped[str | None] = mapped_column(String(128), default=None)
    room_codes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    session_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    hls_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    # HLS asked for at go-live (None: not asked): an `HlsStatus`, moved by go-live and by
    # 100ms's hls.* events; `hls_problem` says why it did not start.
    hls_status: Mapped[str | None] = mapped_column(String(16), default=None)
    hls_problem: Mapped[str | None] = mapped_column(String(500), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    duration_seconds: Mapped[int | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # Set while the broadcaster is away: the stream ends if they are not back within the grace.
    broadcaster_left_at: Mapped[datetime | None] = mapped_column(default=None)
    current_viewers: Mapped[int] = mapped_column(default=0)
    peak_viewers: Mapped[int] = mapped_column(default=0)
    unique_viewers: Mapped[int] = mapped_column(default=0)
    total_watch_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    avg_watch_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    recordings: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    # Set in the transaction that applies an event, cleared by the recompute: the figures above
    # are behind their peer rows. Durable, so a worker that restarts (or was killed) between
    # the two still brings them up to date.
    figures_stale: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    # A live stream's figures carried to a minute's start (tracking.figures.Checkpoint): the
    # most viewers at once before it, and their watch time before it in microseconds. A
    # recompute then reads only the peers connected at that instant or later, not its whole
    # history (and the peers connected across it: CheckpointPeer). None: the next recompute
    # reads every peer (a change before it, or not live).
    figures_carried_to: Mapped[datetime | None] = mapped_column(default=None)
    carried_peak: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    carried_watch_us: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # When the provider closed `session_id` before the broadcaster's join was applied (events
    # out of order, or viewers alone in the room): that join, if it comes, ends the stream.
    session_closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when ending the provider's room failed: the reconciler retries until it is closed.
    room_close_pending_since: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # Chat (SPEC §8): messages posted (deleted ones too), distinct identities that posted, and
    # slow mode (one message per this many seconds per viewer; 0 is off).
    chat_messages: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    chatters: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    chat_slow_mode_seconds: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    influencer: Mapped[Influencer] = relationship(lazy="joined", innerjoin=True)
