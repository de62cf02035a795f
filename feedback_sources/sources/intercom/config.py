"""Intercom's demo configuration (imported only when the demo workspace is built)."""

from __future__ import annotations


def demo_config(base_url: str) -> dict[str, str]:
    """The demo workspace's app on the emulator; its client secret is the one the emulator signs webhooks with."""
    from ...emulator import DEMO_INTERCOM_CLIENT_SECRET, DEMO_INTERCOM_TOKEN

    return {
        "access_token": DEMO_INTERCOM_TOKEN,
        "client_secret": DEMO_INTERCOM_CLIENT_SECRET,
        "base_url": f"{base_url}/intercom",
    }
