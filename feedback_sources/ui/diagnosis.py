"""Connection diagnoses and credential origins in words, for the Connections and Webhooks pages.

The connection test reports a kind (auth, forbidden, ...); the page names it so the fix is obvious.
"""

from __future__ import annotations

DIAGNOSES: dict[str, str] = {
    "ok": "Connected",
    "auth": "Bad token or email",
    "forbidden": "Missing permission (scope)",
    "wrong_subdomain": "Wrong subdomain",
    "not_found": "Wrong address or region",
    "rate_limited": "Rate limited",
    "server": "The vendor's service is failing",
    "network": "Network problem",
    "timeout": "No answer in time",
    "bad_response": "Not the vendor's API",
    "client": "Request refused",
    "config": "Not configured",
    "keyring": "Keyring unavailable",
    "invalid": "Invalid value",
}


def diagnosis_title(kind: str) -> str:
    return DIAGNOSES.get(kind, "Connection failed")


ORIGIN_LABELS: dict[str, str] = {
    "environment": "environment variable",
    ".env": ".env file",
    "keyring": "keyring",
    "missing": "missing",
}


def origin_label(origin: str) -> str:
    return ORIGIN_LABELS.get(origin, origin)
