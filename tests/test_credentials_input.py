"""Scripted credential set-up: values piped to `credentials set`, and the owner-only .env fallback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import keyring
import pytest
from dotenv import dotenv_values
from keyring.backends import fail

from feedback_sources import cli
from feedback_sources.credentials import SERVICE_NAME, CredentialStore, InMemoryKeyring, parse_piped_values

TOKEN = "canary-piped-8d2e1f"


def test_lines_in_prompt_order() -> None:
    assert parse_piped_values("zendesk", f"acme\nana@acme.example\n{TOKEN}\n") == {
        "subdomain": "acme", "email": "ana@acme.example", "api_token": TOKEN,
    }
    # A blank line skips an optional field; trailing blank lines are ignored.
    assert parse_piped_values("intercom", f"{TOKEN}\n\nsecret-x\n\n") == {"access_token": TOKEN,
                                                                          "client_secret": "secret-x"}


def test_field_assignments_by_name_or_variable_and_tokens_with_equals_signs() -> None:
    text = f"# from the vault\nsubdomain=acme\nZENDESK_EMAIL = ana@acme.example\napi_token={TOKEN}==\n"
    assert parse_piped_values("zendesk", text) == {"subdomain": "acme", "email": "ana@acme.example",
                                                   "api_token": f"{TOKEN}=="}
    # A bare token that happens to contain "=" is a value, not an assignment.
    assert parse_piped_values("intercom", "dG9rZW4=\n") == {"access_token": "dG9rZW4="}


@pytest.mark.parametrize(
    "text, message",
    [
        ("acme\napi_token=x\n", "standard input mixes FIELD=value lines with bare values; use one form "
                                "(fields: subdomain, email, api_token, webhook_secret, base_url)."),
        ("a\nb@c.de\nt\nw\nextra\n", "standard input has 5 lines but zendesk takes at most 4 "
                                     "(subdomain, email, api_token, webhook_secret)."),
    ],
)
def test_ambiguous_input_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_piped_values("zendesk", text)
    assert str(raised.value) == message


def run_cli(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))  # StringIO.isatty() is False, as for a pipe
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_cli_set_reads_a_pipe_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    memory = InMemoryKeyring()
    keyring.set_keyring(memory)
    code, out, err = run_cli(monkeypatch, ["credentials", "set", "zendesk"],
                             f"subdomain=acme\nemail=ana@acme.example\napi_token={TOKEN}\n")
    assert (code, out, err) == (0, "Saved subdomain, email, api_token for zendesk in the keyring.\n", "")
    assert memory.get_password(SERVICE_NAME, "zendesk.api_token") == TOKEN

    code, out, err = run_cli(monkeypatch, ["credentials", "set", "zendesk"], "acme corp\n")
    assert code == cli.EXIT_USAGE and out == ""
    assert err.startswith("Not saved: subdomain: 'acme corp' is not a Zendesk subdomain.")
    code, out, err = run_cli(monkeypatch, ["credentials", "set", "zendesk"], "\n\n")
    assert (code, out, err) == (cli.EXIT_USAGE, "", "Not saved: no value given for zendesk.\n")


def test_cli_without_keyring_points_at_dotenv_and_writes_it_owner_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    keyring.set_keyring(fail.Keyring())
    code, out, err = run_cli(monkeypatch, ["credentials", "set", "intercom"], f"{TOKEN}\n")
    assert code == cli.EXIT_FAILED and out == ""
    assert err.startswith("No system keyring is available") and err.endswith("add --dotenv.\n")
    assert not (tmp_path / ".env").exists()

    code, out, err = run_cli(monkeypatch, ["credentials", "set", "intercom", "--dotenv"], f"{TOKEN}\neu\n")
    dotenv = tmp_path / ".env"
    assert (code, out, err) == (0, f"Saved access_token, region for intercom in the owner-only file {dotenv}.\n", "")
    assert dotenv.stat().st_mode & 0o777 == 0o600
    assert dotenv_values(dotenv) == {"INTERCOM_ACCESS_TOKEN": TOKEN, "INTERCOM_REGION": "eu"}


def test_write_dotenv_keeps_other_lines_replaces_in_place_and_tightens_the_mode(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# mine\nOTHER=1\nZENDESK_EMAIL=old@acme.example\nexport ZENDESK_EMAIL=older@acme.example\n")
    os.chmod(dotenv, 0o644)
    store = CredentialStore(environ={}, dotenv_path=dotenv, keyring_backend=InMemoryKeyring())
    token = "t$o'k\\en"  # "$", a quote and a backslash survive verbatim
    assert store.write_dotenv("zendesk", {"email": "ana@acme.example", "api_token": token, "subdomain": ""}) == dotenv
    assert dotenv.read_text() == ("# mine\nOTHER=1\nZENDESK_EMAIL='ana@acme.example'\n"
                                  "ZENDESK_API_TOKEN='t$o\\'k\\\\en'\n")
    assert dotenv.stat().st_mode & 0o777 == 0o600
    assert store.get_config("zendesk") == {"email": "ana@acme.example", "api_token": token}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no temporary file left behind
    with pytest.raises(ValueError, match="nothing to write"):
        store.write_dotenv("zendesk", {"api_token": " "})
