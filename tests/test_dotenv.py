"""The `.env` file: read once per process (again only when it changes), and a file that is not UTF-8 gets an error
naming the file, the line and the column, in the library and on the command line."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import feedback_sources.credentials as credentials
from feedback_sources.cli import EXIT_USAGE, main
from feedback_sources.credentials import SOURCE_FIELDS, CredentialStore, DotenvError, read_dotenv


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often python-dotenv parses a file; starts from an empty cache."""
    monkeypatch.setattr(credentials, "_DOTENV_CACHE", {})
    calls: list[int] = []
    real = credentials.dotenv_values

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(credentials, "dotenv_values", counting)
    return calls


def every_field_everywhere(store: CredentialStore) -> dict[str, dict[str, str]]:
    """What a connection test and the Connections page ask: every field's origin and every source's config."""
    origins = {source: store.field_origins(source) for source in SOURCE_FIELDS}
    for source in SOURCE_FIELDS:
        store.get_config(source)
    return origins


def test_a_file_that_is_not_utf8_names_the_file_line_and_column(tmp_path: Path, parses: list[int]) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"ZENDESK_SUBDOMAIN=acme\n# comment\nZENDESK_EMAIL=caf\xe9@acme.example\n")
    with pytest.raises(DotenvError) as raised:
        every_field_everywhere(CredentialStore(dotenv_path=path))
    assert str(raised.value) == (
        f"{path}: line 3 is not valid UTF-8 (byte 0xe9 at column 18); save the file as UTF-8 or remove that character."
    )
    assert isinstance(raised.value, ValueError)  # callers that report malformed settings catch it as before
    assert parses == []


def test_the_command_line_prints_the_error_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                parses: list[int]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"\xff\xfeZ\x00E\x00N\x00")  # saved as UTF-16 by an editor
    for command in (["test-connection"], ["status"], ["credentials", "status"]):
        out, err = io.StringIO(), io.StringIO()
        assert main([*command, "--db", str(tmp_path / "f.db")] if command != ["credentials", "status"]
                    else command, out=out, err=err) == EXIT_USAGE
        assert err.getvalue().endswith(
            f"error: {tmp_path / '.env'}: line 1 is not valid UTF-8 (byte 0xff at column 1); "
            "save the file as UTF-8 or remove that character.\n"
        ), err.getvalue()
        assert "Traceback" not in err.getvalue() + out.getvalue()


def test_the_file_is_parsed_once_per_process_however_many_fields_are_read(tmp_path: Path, parses: list[int]) -> None:
    path = tmp_path / ".env"
    # About a megabyte: the kind of file that used to cost seconds per field.
    lines = [f"UNRELATED_{i}=value-{i:08d}" for i in range(45_000)]
    path.write_text("\n".join(["ZENDESK_SUBDOMAIN=acme", *lines, "INTERCOM_ACCESS_TOKEN=tok"]) + "\n", encoding="utf-8")
    assert path.stat().st_size > 1_000_000

    first = CredentialStore(dotenv_path=path)
    origins = every_field_everywhere(first)
    every_field_everywhere(first)
    every_field_everywhere(CredentialStore(dotenv_path=path))  # another store in the same process shares the read

    assert parses == [1]
    assert origins["zendesk"]["subdomain"] == ".env" and origins["intercom"]["access_token"] == ".env"
    assert first.get_config("intercom")["access_token"] == "tok"


def test_a_changed_file_is_read_again(tmp_path: Path, parses: list[int]) -> None:
    path = tmp_path / ".env"
    path.write_text("INTERCOM_ACCESS_TOKEN=first\n", encoding="utf-8")
    store = CredentialStore(dotenv_path=path)
    assert store.get_config("intercom")["access_token"] == "first"

    path.write_text("INTERCOM_ACCESS_TOKEN=second-value\n", encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime, whatever the clock
    assert store.get_config("intercom")["access_token"] == "second-value"
    assert store.get_config("intercom")["access_token"] == "second-value"
    assert parses == [1, 1]

    path.unlink()
    assert read_dotenv(path) == {}
    assert store.get_config("intercom").get("access_token") is None


def test_a_byte_order_mark_does_not_hide_the_first_variable(tmp_path: Path, parses: list[int]) -> None:
    path = tmp_path / ".env"
    path.write_text("\ufeffZENDESK_SUBDOMAIN=acme\n", encoding="utf-8")
    assert read_dotenv(path) == {"ZENDESK_SUBDOMAIN": "acme"}
