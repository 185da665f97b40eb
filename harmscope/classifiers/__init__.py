"""harmscope.classifiers."""
