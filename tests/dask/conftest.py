"""Fixtures for the Dask engine tests: a 2-worker LocalCluster (processes, no dashboard)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

NICE = ["thanks for the thoughtful reply", "what a lovely garden you have", "the recipe worked well",
        "I agree with your careful point", "see you at the library later", "great photo of the lake"]
NASTY = ["you are a worthless idiot", "shut up you pathetic clown", "nobody wants your stupid face here",
         "get lost you miserable fool", "what a brainless loser you are", "you disgusting little pest"]
FILLERS = ["today", "honestly", "again", "as always", "right now", "for sure", "in the end", "by the way"]


def make_texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` short comments (half rude) with labels; a few exact repeats on purpose."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        bad = bool(rng.random() < 0.5)
        base = (NASTY if bad else NICE)[rng.integers(6)]
        extra = " ".join(rng.choice(FILLERS, size=rng.integers(0, 4)))
        texts.append(f"{base} {extra}".strip() if i % 17 else base)
        labels.append(int(bad))
    return texts, np.array(labels)


@pytest.fixture(scope="session")
def texts_of():
    """The :func:`make_texts` helper (tests import nothing from conftest)."""
    return make_texts


@pytest.fixture(scope="session")
def dask2():
    """A DaskEngine on its own LocalCluster with 2 single-threaded worker processes."""
    from harmscope.engines import get_engine

    eng = get_engine("dask:2")
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture(scope="session")
def tfidf_dir(tmp_path_factory):
    """A small tfidf model fitted on hand-written comments and saved with the project's backend."""
    from harmscope.classifiers.backends import TfidfClassifier

    texts, y = make_texts(300, seed=1)
    d = tmp_path_factory.mktemp("models") / "tfidf"
    TfidfClassifier(max_features=2000, max_iter=200).fit(texts, y).save(d)
    return d
