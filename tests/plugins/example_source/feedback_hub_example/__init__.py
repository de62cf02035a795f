"""An example Feedback Hub source living outside the project: team notes kept in memory.

It is everything a third-party source needs: a `SourceSpec` registered under the `feedback_hub.sources` entry-point
group (see pyproject.toml), a `BaseIntegration` subclass named by a "module:Class" string, and, optionally, a
settings panel for the Connections page. Importing this module stays as light as the built-in specs.
"""

from feedback_sources.sources.spec import FieldSpec, SourceSpec

SPEC = SourceSpec(
    name="example_notes",
    label="Example Notes",
    integration="feedback_hub_example.integration:ExampleNotesIntegration",
    kind="file",
    description="Notes a team keeps by hand, read without any account.",
    fields=(
        FieldSpec(
            name="team",
            env_var="EXAMPLE_NOTES_TEAM",
            secret=False,
            required=False,
            label="Team",
            help="Only notes of this team are read; leave empty for every team.",
        ),
    ),
    settings_panel="feedback_hub_example.panel:draw",
    total_meaning="notes in the list",
)
