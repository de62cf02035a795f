"""Intercom: conversations from the search API with their contacts, conversation events by webhook."""

from ..spec import SourceSpec

SPEC = SourceSpec(
    name="intercom",
    label="Intercom",
    integration="feedback_sources.sources.intercom.integration:IntercomIntegration",
    color="#1F8DED",
    harness="feedback_sources.sources.harness:INTERCOM",
)
