"""The embedded `local` provider: browsers exchange WebRTC media directly (a mesh led by the
broadcaster), livestage does the signalling over a WebSocket and emits 100ms-shaped events."""
