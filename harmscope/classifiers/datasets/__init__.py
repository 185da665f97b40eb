"""Dataset readers that return the standard classifier frame, one module per source family.

- :mod:`~harmscope.classifiers.datasets.base`: the :data:`DATASETS` registry, strict file readers,
  row checks, :func:`finish` (the standard frame), the identity map and :func:`hash_split`;
- ``jigsaw`` (Civil Comments, Toxic Comment), ``conversationai`` (madlibs, templates, Wikipedia
  toxicity), ``toxigen`` (prompts, annotated), ``tweets`` (Davidson, OLID, MLMA, HASOC),
  ``forums`` (ETHOS, HateXplain, Gab, ConvAbuse, Stormfront), ``synthetic`` (the embedded corpus);
- :mod:`~harmscope.classifiers.datasets.load`: :func:`load_dataset`, :func:`read_part_b`,
  :func:`read_texts`.

Every named dataset is registered once in :data:`DATASETS` with its description and, where it
has them, its ``splits``, ``heldout`` (``name:heldout``) and ``seeded`` (``name:part:SEED``)
metadata; :func:`load_dataset` looks names up only there. Add a dataset: a reader function
returning :func:`finish`'s frame, decorated with ``@DATASETS.register(name=..., version=...,
description=...)`` (a plugin does the same from its own package).

Bad input raises :class:`~harmscope.errors.InputError` with one line naming the file, the row
(1-based data row, header excluded; ``line`` for JSONL) and the column.
"""

from __future__ import annotations

from harmscope.classifiers.datasets.base import (
    DATASETS,
    OnBad,
    axes_of,
    check_text,
    finish,
    group_map,
    hash_split,
    identity_map,
    jsonl_records,
    max_field_bytes,
    read_any,
    read_csv,
    read_jsonl,
    read_tsv_str,
    require_columns,
    shared_path,
    to_fraction,
)
from harmscope.classifiers.datasets.conversationai import (
    identity_terms,
    match_identity_terms,
    read_intersectional,
    read_madlibs,
    read_templates,
    read_wiki_toxicity,
    read_wiki_toxicity_fuzzed,
)
from harmscope.classifiers.datasets.forums import (
    CONVABUSE_TYPES,
    ETHOS_GROUP_COLS,
    GAB_FLAGS,
    read_convabuse,
    read_ethos,
    read_ethos_multi,
    read_gab,
    read_hatexplain,
    read_stormfront,
)
from harmscope.classifiers.datasets.jigsaw import (
    CIVIL_IDENTITY_COLS,
    CIVIL_SUBTYPE_COLS,
    WIKI_LABEL_COLS,
    read_civil_comments,
    read_toxic_comment,
)
from harmscope.classifiers.datasets.load import load_dataset, read_part_b, read_table, read_texts
from harmscope.classifiers.datasets.synthetic import read_corpus
from harmscope.classifiers.datasets.toxigen import (
    TOXIGEN_GROUP_AXES,
    read_toxigen,
    read_toxigen_annotated,
    split_toxigen_line,
)
from harmscope.classifiers.datasets.tweets import (
    MLMA_HOSTILE,
    read_davidson,
    read_hasoc,
    read_mlma,
    read_olid,
)

__all__ = [
    "CIVIL_IDENTITY_COLS", "CIVIL_SUBTYPE_COLS", "CONVABUSE_TYPES", "DATASETS", "ETHOS_GROUP_COLS", "GAB_FLAGS",
    "MLMA_HOSTILE", "OnBad", "TOXIGEN_GROUP_AXES", "WIKI_LABEL_COLS", "axes_of", "check_text", "finish",
    "group_map", "hash_split", "identity_map", "identity_terms", "jsonl_records", "load_dataset",
    "match_identity_terms", "max_field_bytes", "read_any", "read_civil_comments", "read_convabuse", "read_corpus",
    "read_csv", "read_davidson", "read_ethos", "read_ethos_multi", "read_gab", "read_hasoc", "read_hatexplain",
    "read_intersectional", "read_jsonl", "read_madlibs", "read_mlma", "read_olid", "read_part_b", "read_stormfront",
    "read_table", "read_templates", "read_texts", "read_toxic_comment", "read_toxigen", "read_toxigen_annotated",
    "read_tsv_str", "read_wiki_toxicity", "read_wiki_toxicity_fuzzed", "require_columns", "shared_path",
    "split_toxigen_line", "to_fraction",
]
