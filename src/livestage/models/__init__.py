from livestage.kit.db import Base
from livestage.models.audit_log import AuditLog
from livestage.models.influencer import Influencer
from livestage.models.live_stream import LiveStream, StreamStatus, StreamStrategy
from livestage.models.login_throttle import LoginThrottle
from livestage.models.user import User, UserRole
from livestage.models.user_session import UserSession

__all__ = [
    "AuditLog",
    "Base",
    "Influencer",
    "LiveStream",
    "LoginThrottle",
    "StreamStatus",
    "StreamStrategy",
    "User",
    "UserRole",
    "UserSession",
]
