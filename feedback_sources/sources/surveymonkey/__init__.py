"""SurveyMonkey: survey responses in bulk with each survey's questions, response events by webhook."""

from ..spec import FieldSpec, RuleTraits, SourceSpec, base_url_field

SPEC = SourceSpec(
    name="surveymonkey",
    label="SurveyMonkey",
    integration="feedback_sources.sources.surveymonkey.integration:SurveyMonkeyIntegration",
    color="#00BF6F",
    description="Survey responses with each survey's questions.",
    fields=(
        FieldSpec(
            name="access_token",
            env_var="SURVEYMONKEY_ACCESS_TOKEN",
            secret=True,
            required=True,
            label="Access token",
            help="developer.surveymonkey.com > My Apps > your app > Settings > Access Token.",
        ),
        FieldSpec(
            name="client_id",
            env_var="SURVEYMONKEY_CLIENT_ID",
            secret=True,
            required=False,
            label="App client ID",
            help="Only needed to receive webhooks (part of the signing key): your app's Settings page.",
        ),
        FieldSpec(
            name="client_secret",
            env_var="SURVEYMONKEY_CLIENT_SECRET",
            secret=True,
            required=False,
            label="App client secret",
            help="Only needed to receive webhooks (part of the signing key): your app's Settings page.",
        ),
        base_url_field("SURVEYMONKEY_BASE_URL", "http://127.0.0.1:8765/surveymonkey/v3"),
    ),
    rules=RuleTraits(content_only=True, nps=True),
    total_meaning="responses per survey",
    demo_config="feedback_sources.sources.surveymonkey.config:demo_config",
    webhook="feedback_sources.sources.surveymonkey.webhooks:HANDLER",
    emulator="feedback_sources.sources.surveymonkey.emulator:VENDOR",
    harness="feedback_sources.sources.surveymonkey.harness:HARNESS",
)
