"""harmscope.rules: the harm taxonomy, the rule catalog and its loader.

>>> from harmscope.rules import load_catalog
>>> cat = load_catalog()
>>> [r.id for r in cat.select("group:toxicity")]  # doctest: +SKIP
"""

from harmscope.rules.loader import BUILTIN_DIR, Catalog, builtin_catalog, builtin_files, load_catalog

__all__ = ["BUILTIN_DIR", "Catalog", "builtin_catalog", "builtin_files", "load_catalog"]
