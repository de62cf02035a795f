"""Zendesk Support: tickets from the incremental cursor export, ticket events by webhook."""

from ..spec import SourceSpec

SPEC = SourceSpec(
    name="zendesk",
    label="Zendesk",
    integration="feedback_sources.sources.zendesk.integration:ZendeskIntegration",
    color="#03363D",
    harness="feedback_sources.sources.harness:ZENDESK",
)
