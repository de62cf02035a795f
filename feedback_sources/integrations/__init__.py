"""Vendor integrations: each turns one API into pages of normalized records."""

from .base import (
    BaseIntegration,
    ConfigError,
    ConnectionResult,
    Page,
    WebhookSetupRequired,
    available_integrations,
    get_integration_class,
    register,
)
from .http import ErrorKind, HttpClient, RetryPolicy, SourceError

__all__ = [
    "BaseIntegration",
    "ConfigError",
    "ConnectionResult",
    "ErrorKind",
    "HttpClient",
    "Page",
    "RetryPolicy",
    "SourceError",
    "WebhookSetupRequired",
    "available_integrations",
    "get_integration_class",
    "register",
]
