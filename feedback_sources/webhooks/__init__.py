"""The webhook receiver: verified vendor deliveries become records through the sync's own mappers.

`create_receiver_app` (in `app`) builds the ASGI app and `serve` (in `server`) runs it; the Webhooks page reads
`receiver_status` and `recent_events`, which need neither Starlette nor uvicorn.
"""

from .events import receiver_status, recent_events

__all__ = ["receiver_status", "recent_events"]
