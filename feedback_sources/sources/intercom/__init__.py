"""Intercom: conversations from the search API with their contacts, conversation events by webhook."""

from ..spec import AccountTraits, FieldSpec, SourceSpec, base_url_field

SPEC = SourceSpec(
    name="intercom",
    label="Intercom",
    integration="feedback_sources.sources.intercom.integration:IntercomIntegration",
    color="#1F8DED",
    description="Conversations with the people who wrote them.",
    fields=(
        FieldSpec(
            name="access_token",
            env_var="INTERCOM_ACCESS_TOKEN",
            secret=True,
            required=True,
            label="Access token",
            help="Developer Hub > your app > Authentication > Access token.",
        ),
        FieldSpec(
            name="region",
            env_var="INTERCOM_REGION",
            secret=False,
            required=False,
            label="Data region",
            help="Where your workspace is hosted: us (default), eu or au.",
            choices=("us", "eu", "au"),
            default="us",
        ),
        FieldSpec(
            name="client_secret",
            env_var="INTERCOM_CLIENT_SECRET",
            secret=True,
            required=False,
            label="App client secret",
            help="Only needed to receive webhooks: Developer Hub > your app > Basic information > Client secret.",
        ),
        base_url_field("INTERCOM_BASE_URL", "http://127.0.0.1:8765/intercom"),
    ),
    accounts=AccountTraits(organization_id_field="company_id", organization_name_field="company_name"),
    total_meaning="conversations changed in the range (older conversations updated since count too)",
    total_upper_bound=True,
    demo_config="feedback_sources.sources.intercom.config:demo_config",
    webhook="feedback_sources.sources.intercom.webhooks:HANDLER",
    emulator="feedback_sources.sources.intercom.emulator:VENDOR",
    harness="feedback_sources.sources.intercom.harness:HARNESS",
)
