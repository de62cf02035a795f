"""SurveyMonkey's demo configuration (imported only when the demo workspace is built)."""

from __future__ import annotations


def demo_config(base_url: str) -> dict[str, str]:
    """The demo workspace's app on the emulator; its client id and secret are the emulator's signing key."""
    from ...emulator import DEMO_SURVEYMONKEY_CLIENT_ID, DEMO_SURVEYMONKEY_CLIENT_SECRET, DEMO_SURVEYMONKEY_TOKEN

    return {
        "access_token": DEMO_SURVEYMONKEY_TOKEN,
        "client_id": DEMO_SURVEYMONKEY_CLIENT_ID,
        "client_secret": DEMO_SURVEYMONKEY_CLIENT_SECRET,
        "base_url": f"{base_url}/surveymonkey/v3",
    }
