from livestage.kit.db import Base
from livestage.models.audit_log import AuditLog
from livestage.models.chat_message import ChatMessage, ChatRole
from livestage.models.chat_restriction import ChatRestriction, RestrictionKind
from livestage.models.checkpoint_peer import CheckpointPeer
from livestage.models.influencer import Influencer
from livestage.models.live_stream import HlsStatus, LiveStream, StreamStatus, StreamStrategy
from livestage.models.login_throttle import LoginThrottle
from livestage.models.provider_event import ProviderEvent
from livestage.models.stream_peer import StreamPeer
from livestage.models.user import User, UserRole
from livestage.models.user_session import UserSession
from livestage.models.viewer_join_batch import ViewerJoinBatch
from livestage.models.viewer_sample import ViewerSample

__all__ = [
    "AuditLog",
    "Base",
    "ChatMessage",
    "CheckpointPeer",
    "ChatRestriction",
    "ChatRole",
    "HlsStatus",
    "Influencer",
    "LiveStream",
    "LoginThrottle",
    "ProviderEvent",
    "RestrictionKind",
    "StreamStatus",
    "StreamPeer",
    "StreamStrategy",
    "User",
    "UserRole",
    "UserSession",
    "ViewerJoinBatch",
    "ViewerSample",
]
