"""SurveyMonkey: survey responses in bulk with each survey's questions, response events by webhook."""

from ..spec import SourceSpec

SPEC = SourceSpec(
    name="surveymonkey",
    label="SurveyMonkey",
    integration="feedback_sources.sources.surveymonkey.integration:SurveyMonkeyIntegration",
    color="#00BF6F",
    harness="feedback_sources.sources.harness:SURVEYMONKEY",
)
