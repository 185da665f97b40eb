"""Toxicity classifier backends: sklearn-style estimators over raw texts, one module per backend.

- :mod:`~harmscope.classifiers.backends.base`: the :data:`BACKENDS` registry, the shared base
  class, safe loading of untrusted model folders, :func:`save_model`, :func:`load_classifier`;
- :mod:`~harmscope.classifiers.backends.linear`: the logistic-regression head of tfidf and embed;
- ``tfidf``, ``embed``, ``finetune``, ``detoxify``, ``multihead``: one backend each.

Importing this package registers every backend (none of them imports torch at import time:
finetune and detoxify import it when a model is built or loaded). Add a backend: subclass
:class:`BaseBackend`, declare ``name``, ``version`` and ``description`` as class attributes and
decorate it with ``@BACKENDS.register`` (a plugin does the same from its own package).
"""

from __future__ import annotations

from harmscope.classifiers.backends.base import (
    BACKENDS,
    CARD,
    TRUST_ENV,
    BaseBackend,
    card_number,
    default_model_dir,
    load_classifier,
    load_npy,
    read_card,
    save_model,
    texts_of,
    torch_load_checked,
    trusted_checkpoints,
    versions,
)
from harmscope.classifiers.backends.detoxify import DetoxifyClassifier
from harmscope.classifiers.backends.embed import EmbedClassifier
from harmscope.classifiers.backends.finetune import FinetuneClassifier
from harmscope.classifiers.backends.linear import LinearHead, l2sp_logreg
from harmscope.classifiers.backends.multihead import MultiHeadClassifier, load_default
from harmscope.classifiers.backends.tfidf import TfidfClassifier

_l2sp_logreg = l2sp_logreg  # old private name, used by tests and notebooks

__all__ = [
    "BACKENDS",
    "CARD",
    "TRUST_ENV",
    "BaseBackend",
    "DetoxifyClassifier",
    "EmbedClassifier",
    "FinetuneClassifier",
    "LinearHead",
    "MultiHeadClassifier",
    "TfidfClassifier",
    "card_number",
    "default_model_dir",
    "l2sp_logreg",
    "load_classifier",
    "load_default",
    "load_npy",
    "read_card",
    "save_model",
    "texts_of",
    "torch_load_checked",
    "trusted_checkpoints",
    "versions",
]
