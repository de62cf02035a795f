"""The example source's own section on the Connections page."""

from __future__ import annotations

import streamlit as st

from feedback_sources.sources.spec import SettingsPanelContext

from .integration import NOTES


def draw(context: SettingsPanelContext) -> None:
    """Say which notes a sync would read, from the team saved for this source."""
    team = context.credentials.get_config(context.source).get("team")
    count = sum(1 for note in NOTES if not team or note[1] == team)
    st.caption(f"Example Notes panel ({context.mode} workspace): {count} notes to read; store {context.db_path.name}.")
