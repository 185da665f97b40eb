"""harmscope.reports."""
