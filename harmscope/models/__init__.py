"""harmscope.models."""
