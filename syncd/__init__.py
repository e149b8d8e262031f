"""syncd: the sync daemon (rooms, peers, access, HTTP and WebSocket endpoints, CLI)."""
