"""Feedback Hub: pull customer feedback from Zendesk, Intercom and SurveyMonkey into a local SQLite store."""

__version__ = "0.1.0"
