"""Pure helpers behind the Streamlit pages, one module per page or concern.

Nothing here imports Streamlit, so every rule the pages follow (what a URL means, what a click on a chart filters,
which link is safe to show) is tested without a browser. Nothing is re-exported here: a page imports from the module
that holds what it needs, so loading one helper does not load the others.
"""
