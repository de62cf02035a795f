"""Feedback Hub: pull customer feedback from support desks, chat tools, surveys and files into a local SQLite store.

The sources it knows are listed by the source registry (`feedback_sources.sources`), built-in and plugins alike.
"""

__version__ = "0.1.0"
