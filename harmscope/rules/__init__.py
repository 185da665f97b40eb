"""harmscope.rules."""
