"""Zendesk Support: tickets from the incremental cursor export, ticket events by webhook."""

from ..spec import AccountTraits, FieldSpec, RuleTraits, SourceSpec, base_url_field

_CONFIG = "feedback_sources.sources.zendesk.config"

SPEC = SourceSpec(
    name="zendesk",
    label="Zendesk",
    integration="feedback_sources.sources.zendesk.integration:ZendeskIntegration",
    color="#03363D",
    description="Support tickets and their comments.",
    fields=(
        FieldSpec(
            name="subdomain",
            env_var="ZENDESK_SUBDOMAIN",
            secret=False,
            required=True,
            label="Subdomain",
            help='The part before .zendesk.com: "acme" for https://acme.zendesk.com.',
            normalize=f"{_CONFIG}:normalize_subdomain",
        ),
        FieldSpec(
            name="email",
            env_var="ZENDESK_EMAIL",
            secret=False,
            required=True,
            label="Agent email",
            help="Email of the Zendesk user the API token belongs to.",
            normalize=f"{_CONFIG}:normalize_email",
        ),
        FieldSpec(
            name="api_token",
            env_var="ZENDESK_API_TOKEN",
            secret=True,
            required=True,
            label="API token",
            help="Admin Center > Apps and integrations > Zendesk API > API tokens.",
        ),
        FieldSpec(
            name="webhook_secret",
            env_var="ZENDESK_WEBHOOK_SECRET",
            secret=True,
            required=False,
            label="Webhook signing secret",
            help="Only needed to receive webhooks: the signing secret shown for the webhook in Admin Center.",
        ),
        base_url_field("ZENDESK_BASE_URL", "http://127.0.0.1:8765/zendesk/demo"),
    ),
    accounts=AccountTraits(organization_id_field="organization_id", organization_name_field="organization_name"),
    rules=RuleTraits(organization=True, vendor_type=True),
    total_meaning="tickets created in the range",
    total_hint="Zendesk reports one on a full sync",
    demo_config=f"{_CONFIG}:demo_config",
    secret_encodings=f"{_CONFIG}:secret_encodings",
    webhook="feedback_sources.sources.zendesk.webhooks:HANDLER",
    emulator="feedback_sources.sources.zendesk.emulator:VENDOR",
    harness="feedback_sources.sources.zendesk.harness:HARNESS",
)
