"""The benchmarks' quick mode runs every figure end to end and writes a table with every row.

Correctness only: quick mode uses small N, and no number in it is compared with a target.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Every row the report must carry, by figure; the numbers in the names depend on N and are matched loosely.
EXPECTED_ROWS = [
    ("1", r"zendesk: sync [\d,]+ records from empty, time / rate-limit bound"),
    ("1", r"intercom: sync [\d,]+ records from empty, time / rate-limit bound"),
    ("1", r"surveymonkey: sync [\d,]+ records from empty, time / rate-limit bound"),
    ("2", r"Zendesk: [\d,]+ tickets end to end \(HTTP, parse, normalize, upsert\)"),
    ("2", r"SQLite alone: the store's rows \+ full-text index \+ tags, 1,000 per transaction"),
    ("2", r"SQLite alone: rows only \(no full-text index, no tags\), 1,000 per transaction"),
    ("2", r"Stage: Store.upsert_records \(rows, index, tags, stale checks\)"),
    ("2", r"Stage: JSON decoding of the export pages"),
    ("2", r"Stage: mapping tickets to records \(map_ticket\)"),
    ("2", r"Stage: the emulator serving export pages \(other process\)"),
    ("2", r"Intercom: [\d,]+ conversations end to end"),
    ("3", r"Re-sync after 1 % \([\d,]+\) of [\d,]+ tickets changed: time and requests"),
    ("3", r"Re-sync after 0.1 % \([\d,]+\) changed"),
    ("4", r"Filter change on [\d,]+ records \(source \+ tier \+ category \+ 90 days \+ text\): every Explore query"),
    ("4", r"Filter change: kpis \(incl. previous period count\)"),
    ("4", r"Filter change: volume_by_day by category \(volume chart\)"),
    ("4", r"Filter change: top_tags \(tags chart\)"),
    ("4", r"Filter change: breakdown source × tier \(chart\)"),
    ("4", r"Filter change: breakdown category × tier \(heatmap\)"),
    ("4", r"Filter change: rows: first table page"),
    ("4", r"Filter change: count"),
    ("4", r"Full-text search, a common word \(`export`\): count \+ first page"),
    ("4", r"Full-text search, a phrase \(`\"csv export\"`\): count \+ first page"),
    ("4", r"Full-text search, a prefix \(`notif\*`\): count \+ first page"),
    ("4", r"Full-text search, two words \(`invoice refund`\): count \+ first page"),
    ("4", r"Full-text search, an exclusion \(`login -sso`\): count \+ first page"),
    ("4", r"Aggregates over all records \(the default view\): slowest query"),
    ("4", r"Aggregates over last 90 days, no other filter: slowest query"),
    ("4", r"App: first render of Explore( via AppTest)?, default view \(all time\)"),
    ("4", r"App: first render of Explore( via AppTest)?, filtered link \(source, tier, category, 90 days, text\)"),
    ("5", r"CSV export of [\d,]+ filtered rows \(CLI, all columns but synced_at\)"),
    ("5", r"Peak RSS of the exporting process"),
    ("5", r"Export stage: reading the filtered rows, neutralized in SQL \(Store.iter_values\)"),
    ("5", r"Export stage: CSV formatting \(export.write_values, csv.writer\)"),
    ("6", r"Peak RSS of a CLI sync of [\d,]+ Zendesk tickets"),
    *(("7", rf"Search with highlights, {label}: count \+ first page of ranked snippets") for label in (
        r"a common word \(`export`\)", r"a phrase \(`\"csv export\"`\)", r"a prefix \(`notif\*`\)",
        r"two words \(`invoice refund`\)", r"an exclusion \(`login -sso`\)")),
    *(("7", rf"Demand, {scope}: {part}") for scope in (
        "preset: enterprise feature requests this quarter", "every category this quarter") for part in (
        "ranked themes with the previous period", r"accounts behind the top theme \(.+\)")),
    ("7", r"Emerging topics this quarter vs the previous one"),
    ("7", r"Rules: first application of the shipped rules to [\d,]+ generated records"),
    *(("7", rf"Rules: {step}, {edit}") for edit in (
        r"unchanged rules \(re-apply\)", r"move a rare tag \(`gdpr`\) to complaint",
        r"move the most common tag \(`bug`\) to feature_request") for step in ("preview", "apply")),
    ("8", r"theme purity \(labelled set\)"),
    ("8", r"adjusted mutual information"),
    ("8", r"near-duplicates in the same theme"),
    ("8", r"sentiment agreement with labels"),
    ("8", r"full re-computation, [\d,]+ records"),
    ("8", r"place 1,000 new records in themes"),
    ("8", r"Demand themes, every category this quarter"),
    ("8", r"enterprise customers unhappy this month"),
    *(("9", rf"{vendor}: full sync of [\d,]+ records, project / bare httpx \+ sqlite loop")
      for vendor in ("Zendesk", "Intercom", "SurveyMonkey")),
    ("9", r"Sentiment scoring of new or changed text \(VADER, inside Store.upsert_records\), per record"),
    ("9", r"Start-up: imports of `feedback-hub --help` \(the console script\)"),
    ("9", r"Start-up: imports of a no-change incremental CLI sync"),
    ("9", r"No-change incremental CLI sync of all three sources \(cron\), wall time"),
    *(("10", rf"Facets source, tier, category, {scope}: Datasette / project Store") for scope in (
        "all records", r"filtered \(zendesk, enterprise, bug_report, 90 days\)")),
    ("11", r"Browser: first render of Explore \(cold server cache\)"),
    ("11", r"Browser: first render of Explore, second visit \(server cache warm\)"),
    ("11", r"Browser: filter change \(Source = Intercom\)"),
    ("11", r"Browser: peak RSS of the Streamlit process"),
]


def table_rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in markdown.splitlines():
        if re.match(r"^\| \d+ ", line):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_quick_mode_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output), "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    markdown = output.read_text(encoding="utf-8")
    assert "Quick mode" in markdown
    for heading in ("## Machine", "## Results", "CPU cores:", "SQLite"):
        assert heading in markdown
    rows = table_rows(markdown)
    assert all(len(row) == 6 for row in rows), rows
    found = [(row[0], row[1]) for row in rows]
    # The sniffio comparison runs in full mode only (and only where sniffio is missing): never required here.
    optional = [entry for entry in found if "sniffio" in entry[1]]
    assert len(optional) <= 1
    required = [entry for entry in found if entry not in optional]
    assert len(required) == len(EXPECTED_ROWS), [name for _, name in required]
    for (figure, name), (expected_figure, pattern) in zip(required, EXPECTED_ROWS):
        assert figure == expected_figure and re.fullmatch(pattern, name), (figure, name, pattern)
    for row in rows:
        # Every row carries a measurement; only the app render may be skipped (it says why), when the page fails.
        assert row[2] and (row[2] != "not measured" or row[1].startswith("App:")), row
        assert "**not met**" not in row[4] and row[1] != "figure failed to run", row
