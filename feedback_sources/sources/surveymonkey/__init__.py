"""SurveyMonkey: survey responses in bulk with each survey's questions, response events by webhook."""

from ..spec import SourceSpec

SPEC = SourceSpec(
    name="surveymonkey",
    label="SurveyMonkey",
    integration="feedback_sources.sources.surveymonkey.integration:SurveyMonkeyIntegration",
    color="#00BF6F",
    webhook="feedback_sources.sources.surveymonkey.webhooks:HANDLER",
    emulator="feedback_sources.sources.surveymonkey.emulator:VENDOR",
)
