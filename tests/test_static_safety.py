"""Properties read off the source itself: nothing renders record text as markdown or HTML, servers bind to this
machine by default, every HTTP client has a timeout and verifies TLS, and the package never imports Streamlit.

The app's `.streamlit/config.toml` (127.0.0.1, XSRF, no error details, no usage stats) is checked by
tests/test_app_frame.py::test_streamlit_config_is_local_private_and_quiet.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_sources.cli import build_parser
from feedback_sources.emulator import run_emulator_server
from feedback_sources.integrations.base import BaseIntegration
from feedback_sources.integrations.http import HttpClient
from feedback_sources.webhooks.server import running_receiver, serve
from tests.reliability_support import ROOT

PACKAGE = ROOT / "feedback_sources"
APP_FILES = [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]

# Streamlit calls that render their text (or label) as markdown.
MARKDOWN_RENDERERS = frozenset({
    "markdown", "write", "caption", "info", "warning", "error", "success", "toast", "title", "header", "subheader",
    "expander", "button", "checkbox", "toggle", "radio", "tabs", "metric", "page_link", "popover", "status",
    "progress", "download_button", "link_button", "text_input", "text_area", "selectbox", "multiselect",
})
# Keywords whose value such a call renders as markdown.
RENDERED_KEYWORDS = frozenset({"body", "label", "text", "help", "value"})
# Feedback fields that hold what customers and vendors wrote.
FREE_TEXT_FIELDS = frozenset({
    "title", "content", "customer_name", "customer_email", "customer_id", "source_id", "tags", "metadata", "url",
})
# Names under which pages hold records or their fields.
RECORD_NAMES = frozenset({"record", "records", "row", "rows", "content", "title", "feedback", "customer_name"})
ESCAPES = frozenset({"md_escape", "source_label", "len", "int", "float"})


def repository_python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "*.py"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [ROOT / name for name in listed if name and (ROOT / name).is_file()]


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def record_text_in(expression: ast.AST) -> list[str]:
    """Places in `expression` where record text flows in unescaped: a free-text field read off anything
    (`x["title"]`, `x.get("content")`, `x.customer_name`), or a whole record or row passed as it is."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Call) and call_name(node) in ESCAPES:
            return  # escaped, or reduced to a number or a fixed label: safe whatever it was given
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if node.slice.value in FREE_TEXT_FIELDS:
                found.append(ast.unparse(node))
            return  # another field of a record (source, category, dates) holds no free text
        if isinstance(node, ast.Call) and call_name(node) == "get" and node.args and isinstance(node.args[0], ast.Constant):
            if node.args[0].value in FREE_TEXT_FIELDS:
                found.append(ast.unparse(node))
            return
        if isinstance(node, ast.Attribute):
            if node.attr in FREE_TEXT_FIELDS:
                found.append(ast.unparse(node))
            return
        if isinstance(node, ast.Name) and node.id in RECORD_NAMES:
            found.append(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(expression)
    return found


def markdown_fed_with_record_text(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or call_name(node) not in MARKDOWN_RENDERERS:
            continue
        rendered = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in RENDERED_KEYWORDS]
        for expression in rendered:
            for place in record_text_in(expression):
                yield node.lineno, f"{call_name(node)}(... {place} ...)"


# -- rendering -----------------------------------------------------------------------------------------------------------


def raw_html_calls(tree: ast.Module) -> Iterator[int]:
    """Calls that let HTML through: any `unsafe_allow_html=` argument, `st.html(...)`, `components.html(...)`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if any(k.arg == "unsafe_allow_html" for k in node.keywords):
                yield node.lineno
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "html" and ast.unparse(
                    node.func.value) in ("st", "streamlit", "components", "stc", "st.components.v1"):
                yield node.lineno


def test_no_file_in_the_repository_lets_html_through() -> None:
    files = repository_python_files()
    assert len(files) > 30
    assert {str(p.relative_to(ROOT)): list(raw_html_calls(parsed(p))) for p in files} == {
        str(p.relative_to(ROOT)): [] for p in files
    }
    assert list(raw_html_calls(ast.parse("st.markdown(text, unsafe_allow_html=False)\nst.html(x)"))) == [1, 2]


def test_no_page_renders_record_text_as_markdown() -> None:
    assert {str(path.relative_to(ROOT)): list(markdown_fed_with_record_text(parsed(path))) for path in APP_FILES} == {
        str(path.relative_to(ROOT)): [] for path in APP_FILES
    }


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('st.markdown(f"**{record[\'title\']}**")', ["markdown(... record['title'] ...)"]),
        ('st.write(row.get("content"))', ["write(... row.get('content') ...)"]),
        ("st.expander(label=item.customer_name)", ["expander(... item.customer_name ...)"]),
        ("st.write(record)", ["write(... record ...)"]),
        ('st.link_button(f"Open in {source_label(record.get(\'source\'))}", link)', []),
        ('st.markdown(f"**{md_escape(record[\'title\'])}**")', []),
        ('st.text(record["content"])', []),
        ('st.markdown(f"**Records** ({total:,})")', []),
    ],
)
def test_the_markdown_check_flags_record_text_and_only_that(source: str, flagged: list[str]) -> None:
    assert [place for _, place in markdown_fed_with_record_text(ast.parse(source))] == flagged


# -- binding and clients -------------------------------------------------------------------------------------------------


def test_servers_bind_to_this_machine_by_default() -> None:
    webhook_args = build_parser().parse_args(["serve-webhooks"])
    assert {
        "serve-webhooks --host": webhook_args.host,
        "webhooks.server.serve": inspect.signature(serve).parameters["host"].default,
        "webhooks.server.running_receiver": inspect.signature(running_receiver).parameters["host"].default,
        "emulator.run_emulator_server": inspect.signature(run_emulator_server).parameters["host"].default,
    } == dict.fromkeys(
        ("serve-webhooks --host", "webhooks.server.serve", "webhooks.server.running_receiver",
         "emulator.run_emulator_server"), "127.0.0.1")


def package_calls() -> Iterator[tuple[Path, ast.Call]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call):
                yield path, node


def test_every_http_client_has_a_timeout_and_verifies_tls() -> None:
    clients = [(path, node) for path, node in package_calls()
               if ast.unparse(node.func) in ("httpx.AsyncClient", "httpx.Client", "AsyncClient", "Client")]
    assert clients, "the package creates its HTTP clients somewhere"
    without_timeout = [f"{path.name}:{node.lineno}" for path, node in clients
                       if "timeout" not in {k.arg for k in node.keywords}]
    unverified = [f"{path.name}:{node.lineno}" for path, node in package_calls()
                  for k in node.keywords if k.arg == "verify" and isinstance(k.value, ast.Constant) and not k.value.value]
    assert (without_timeout, unverified) == ([], [])
    for default in (inspect.signature(HttpClient).parameters["timeout"].default,
                    inspect.signature(BaseIntegration.__init__).parameters["timeout"].default):
        assert 0 < default <= 60


def _is_settings_panel(path: Path) -> bool:
    """A source's settings panel (sources/<name>/panel.py): UI the app loads through SourceSpec.settings_panel."""
    relative = path.relative_to(PACKAGE).parts
    return len(relative) == 3 and relative[0] == "sources" and relative[2] == "panel.py"


def test_the_package_never_imports_streamlit() -> None:
    """The CLI, the receiver and a sync never load Streamlit. A source's settings panel is the one exception, and
    nothing in the package imports a panel: only the app reaches it, by the name its spec gives."""
    importing = []
    importing_a_panel = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(parsed(path)):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if isinstance(node, ast.ImportFrom):
                names += [f"{node.module or ''}.{alias.name}" for alias in node.names]
            if any(name == "streamlit" or name.startswith("streamlit.") for name in names):
                if not _is_settings_panel(path):
                    importing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if any(name == "panel" or name.endswith(".panel") for name in names):
                importing_a_panel.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert importing == []
    assert importing_a_panel == []
