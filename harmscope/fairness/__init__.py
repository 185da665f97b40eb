"""harmscope.fairness."""
