"""Spreadsheet import: a CSV or XLSX export (G2 or App Store reviews, Typeform responses, sales-call notes) mapped
column by column onto the normalized record and imported like a vendor's pages.

Re-importing the same file, or the same export with rows added, stores only what is new or changed: a record's id
is `spreadsheet:<dataset>:<id column or content hash>`. Settings, not secrets: nothing goes to the keyring.
"""

from ..spec import FieldSpec, RuleTraits, SourceSpec

SPEC = SourceSpec(
    name="spreadsheet",
    label="Spreadsheet",
    kind="file",
    integration="feedback_sources.sources.spreadsheet.integration:SpreadsheetIntegration",
    fields=(
        FieldSpec(name="path", env_var="SPREADSHEET_PATH", secret=False, required=True, label="File",
                  help="Path of the CSV or XLSX export to import"),
        FieldSpec(name="mapping", env_var="SPREADSHEET_MAPPING", secret=False, required=True, label="Column mapping",
                  help='JSON: which column feeds which field, e.g. {"content": "Review", "date": "Date"}'),
        FieldSpec(name="dataset", env_var="SPREADSHEET_DATASET", secret=False, required=False, label="Dataset",
                  help="Name of the import (records are spreadsheet:<dataset>:<id>); default: from the file name"),
        FieldSpec(name="encoding", env_var="SPREADSHEET_ENCODING", secret=False, required=False, label="Encoding",
                  help="auto (UTF-8 / UTF-16 with a byte-order mark), or cp1252 / latin-1 for Windows exports",
                  choices=("auto", "utf-8", "utf-16", "cp1252", "latin-1"), default="auto"),
    ),
    color="#217346",
    description="Import a CSV or XLSX export: map its columns, preview, import; re-imports add only new rows.",
    # The title and the text are both read for keywords, as the importer reads them.
    rules=RuleTraits(),
    total_meaning="rows in the file's last import",
    settings_panel="feedback_sources.sources.spreadsheet.panel:render",
    demo_config="feedback_sources.sources.spreadsheet.demo:demo_config",
    harness="feedback_sources.sources.spreadsheet.harness:HARNESS",
)
