"""harmscope.classifiers: toxicity classifiers (readers, backends, strategies, export).

Light to import: names are resolved lazily, so ``import harmscope.classifiers`` loads neither
sklearn nor torch. Public API: :func:`load_classifier`, :data:`BACKENDS`, :func:`load_dataset`,
:data:`DATASETS`, :func:`make_corpus`, :func:`weak_label`, :func:`split_corpus`, :data:`STRATEGIES`,
:func:`train_strategy`, :func:`export_detoxify`.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "load_classifier": ("harmscope.classifiers.backends.base", "load_classifier"),
    "BACKENDS": ("harmscope.classifiers.backends.base", "BACKENDS"),
    "TfidfClassifier": ("harmscope.classifiers.backends.tfidf", "TfidfClassifier"),
    "EmbedClassifier": ("harmscope.classifiers.backends.embed", "EmbedClassifier"),
    "FinetuneClassifier": ("harmscope.classifiers.backends.finetune", "FinetuneClassifier"),
    "DetoxifyClassifier": ("harmscope.classifiers.backends.detoxify", "DetoxifyClassifier"),
    "MultiHeadClassifier": ("harmscope.classifiers.backends.multihead", "MultiHeadClassifier"),
    "load_dataset": ("harmscope.classifiers.datasets.load", "load_dataset"),
    "DATASETS": ("harmscope.classifiers.datasets.base", "DATASETS"),
    "make_corpus": ("harmscope.classifiers.corpus", "make_corpus"),
    "weak_label": ("harmscope.classifiers.corpus", "weak_label"),
    "split_corpus": ("harmscope.classifiers.corpus", "split_corpus"),
    "STRATEGIES": ("harmscope.classifiers.strategies", "STRATEGIES"),
    "train_strategy": ("harmscope.classifiers.strategies", "train"),
    "export_detoxify": ("harmscope.classifiers.export", "export_detoxify"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(name)
