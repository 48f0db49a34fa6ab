from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base


class CheckpointPeer(Base):
    """A peer connected across its stream's figures checkpoint (LiveStream.figures_carried_to):
    joined before that instant, not left by it. With the peers who joined from it on (by the
    (stream_id, joined_at) index) they are the peers a recompute reads. Any other peer before
    the checkpoint that changes clears it, so the set holds while it stands; it is replaced
    when the checkpoint moves (at most once a minute). A table of its own: on the stream row a
    crowd's ids were rewritten by SQLite at every update of the row."""

    __tablename__ = "checkpoint_peers"

    stream_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), primary_key=True
    )
    # stream_peers.id, not a foreign key: a peer row is never deleted but with its stream.
    peer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
