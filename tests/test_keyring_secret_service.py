"""Credentials stored, read and deleted through a real Secret Service keyring: Debian's gnome-keyring on a private
D-Bus session bus started for this test run (`make test` installs gnome-keyring, dbus and dbus-x11).

keyring's SecretService backend talks to the daemon over D-Bus through secretstorage, exactly as on a Linux desktop;
the only difference is that the login keyring is unlocked with a password given on stdin instead of at login.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedback_sources.credentials import SERVICE_NAME, CredentialStore

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Secret Service is the Linux keyring")

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "canary-secret-service-4c1d9e"
KEYRING_PASSWORD = b"test-run-keyring-password"


def _missing_programs() -> list[str]:
    return [name for name in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(name) is None]


@pytest.fixture
def secret_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A session bus and an unlocked gnome-keyring on it, both living in tmp_path; yields the environment to use."""
    missing = _missing_programs()
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian: apt-get install gnome-keyring dbus dbus-x11)")
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:path={tmp_path / 'bus'}"],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()  # printed once the bus listens
        if not address:
            pytest.skip("dbus-daemon did not start a session bus here")
        env["DBUS_SESSION_BUS_ADDRESS"] = address
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert daemon.stdin is not None and daemon.stdout is not None
        daemon.stdin.write(KEYRING_PASSWORD)
        daemon.stdin.close()  # the password ends at end of input
        _wait_for_secret_service(address)
        for name in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
            monkeypatch.setenv(name, env[name])
        yield env
    finally:
        for process in (daemon, bus):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def _wait_for_secret_service(address: str) -> None:
    """Until the daemon owns org.freedesktop.secrets on the bus (bounded: 100 tries of 0.1 s)."""
    import time

    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    with open_dbus_connection(bus=address) as connection:
        for _ in range(100):
            reply = connection.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", ("org.freedesktop.secrets",)))
            if reply.body[0]:
                return
            time.sleep(0.1)
    pytest.fail("gnome-keyring-daemon never took the org.freedesktop.secrets name")


def _secret_service_backend():  # type: ignore[no-untyped-def]
    from keyring.backends import SecretService

    return SecretService.Keyring()


def test_credentials_round_trip_through_gnome_keyring(secret_service: dict[str, str]) -> None:
    store = CredentialStore(environ={}, dotenv_path=None, keyring_backend=_secret_service_backend())
    status = store.keyring_status()
    assert status.usable, status.message
    assert status.backend == "keyring.backends.SecretService.Keyring"

    store.set("zendesk", {"subdomain": "https://Acme.zendesk.com/", "email": "pm@acme.example", "api_token": TOKEN})

    # A second store (another process would do the same) reads them back from the daemon.
    reader = CredentialStore(environ={}, dotenv_path=None, keyring_backend=_secret_service_backend())
    assert dict(reader.get_config("zendesk")) == {"subdomain": "acme", "email": "pm@acme.example", "api_token": TOKEN}
    assert reader.field_origins("zendesk") == {
        "subdomain": "keyring", "email": "keyring", "api_token": "keyring", "webhook_secret": "missing",
        "base_url": "missing",
    }

    # The daemon keeps them encrypted on disk: the token is nowhere in its keyring files.
    keyrings = Path(secret_service["XDG_DATA_HOME"]) / "keyrings"
    files = [path for path in keyrings.rglob("*") if path.is_file()]
    assert files, "gnome-keyring wrote no keyring file"
    assert not any(TOKEN.encode() in path.read_bytes() for path in files)

    reader.delete("zendesk")
    after = CredentialStore(environ={}, dotenv_path=None, keyring_backend=_secret_service_backend())
    assert after.missing_required("zendesk") == ["subdomain", "email", "api_token"]
    assert _secret_service_backend().get_password(SERVICE_NAME, "zendesk.api_token") is None


def test_cli_reads_piped_values_into_gnome_keyring(secret_service: dict[str, str], tmp_path: Path) -> None:
    # Run from an empty directory (no .env) with this checkout importable.
    env = {**secret_service, "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring",
           "PYTHONPATH": str(ROOT)}
    for name in ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"):
        env.pop(name, None)
    command = [sys.executable, "-m", "feedback_sources", "credentials"]
    saved = subprocess.run([*command, "set", "zendesk"], input=f"acme\nana@acme.example\n{TOKEN}\n", env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == "Saved subdomain, email, api_token for zendesk in the keyring."
    assert TOKEN not in saved.stdout + saved.stderr

    status = subprocess.run([*command, "status"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    zendesk = next(line for line in status.stdout.splitlines() if line.startswith("zendesk"))
    assert zendesk.split() == ["zendesk", "configured",
                               "subdomain=keyring,", "email=keyring,", "api_token=keyring,", "webhook_secret=missing,",
                               "base_url=missing"]
    assert _secret_service_backend().get_password(SERVICE_NAME, "zendesk.api_token") == TOKEN

    removed = subprocess.run([*command, "delete", "zendesk"], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
    assert removed.returncode == 0, removed.stderr
    assert _secret_service_backend().get_password(SERVICE_NAME, "zendesk.api_token") is None
