"""The embedded synthetic corpus as a named dataset: ``corpus:clean|noisy|eval|all[:SEED]``."""

from __future__ import annotations

import pandas as pd

from harmscope.classifiers.corpus import corpus_split
from harmscope.classifiers.datasets.base import DATASETS


@DATASETS.register(name="corpus", version="1",
                   description="the embedded synthetic corpus (harmscope.classifiers.corpus)",
                   splits=("clean", "noisy", "eval", "all"), seeded=True)
def read_corpus(split: str = "all", *, seed: int = 0) -> pd.DataFrame:
    """One part of the synthetic corpus (see :func:`harmscope.classifiers.corpus.corpus_split`)."""
    return corpus_split(split, seed=seed)
