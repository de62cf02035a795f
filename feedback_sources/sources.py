"""The sources Feedback Hub pulls from, in a module of its own so the command line can list them without importing
the integrations (httpx, pydantic) just to print `--help`."""

SOURCES: tuple[str, ...] = ("zendesk", "intercom", "surveymonkey")
