"""The logistic-regression head shared by the ``tfidf`` and ``embed`` backends: ``fit``, and a
``partial_fit`` that refits pulled towards the current weights (L2-SP, the convex analogue of
fine-tuning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harmscope.classifiers.backends.base import BaseBackend, check_labels, texts_of
from harmscope.errors import HarmscopeError


def l2sp_logreg(X: Any, y: np.ndarray, w: np.ndarray, coef0: np.ndarray, b0: float, C: float,
                 max_iter: int = 300) -> tuple[np.ndarray, float]:
    """Weighted logistic regression pulled towards (coef0, b0): the convex analogue of
    fine-tuning (L2-SP). Minimises ``C * sum w_i logloss_i + 0.5 * ||coef - coef0||^2``."""
    from scipy.optimize import minimize
    from scipy.special import expit

    s = 2.0 * y - 1.0

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, b = theta[:-1], theta[-1]
        z = s * (X @ coef + b)
        loss = C * float(np.sum(w * np.logaddexp(0.0, -z))) + 0.5 * float(np.sum((coef - coef0) ** 2))
        g = -C * w * s * expit(-z)
        grad = np.empty_like(theta)
        grad[:-1] = np.asarray(X.T @ g).ravel() + (coef - coef0)
        grad[-1] = float(np.sum(g))
        return loss, grad

    res = minimize(f, np.append(coef0, b0), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter})
    return res.x[:-1].astype(np.float64), float(res.x[-1])


def _proba(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    p = expit(z)
    return np.column_stack([1.0 - p, p])


class LinearHead(BaseBackend):
    """Shared fit / partial_fit for backends with a logistic-regression head on features."""

    def _features(self, texts: list[str]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, texts: list[str]) -> None:
        """Fit the featuriser (if any) on the first training texts."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearHead:
        from sklearn.linear_model import LogisticRegression

        texts = texts_of(X)
        y = check_labels(y, len(texts))
        if len(np.unique(y)) < 2:
            raise HarmscopeError("fit: the training labels hold only one class")
        self._prepare(texts)
        F = self._features(texts)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight,
                                random_state=self.seed)
        lr.fit(F, y, sample_weight=sample_weight)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        self.classes_ = np.array([0, 1])
        return self

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearHead:
        """Fine-tune: refit on (X, y) pulled towards the current weights (L2-SP)."""
        if not hasattr(self, "coef_"):
            return self.fit(X, y, sample_weight)
        texts = texts_of(X)
        y = check_labels(y, len(texts))
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.class_weight == "balanced":
            for c in (0, 1):
                m = y == c
                if m.any():
                    w = np.where(m, w * len(y) / (2.0 * m.sum()), w)
        F = self._features(texts)
        C = self.finetune_C if self.finetune_C is not None else self.C
        self.coef_, self.intercept_ = l2sp_logreg(F, y, w, self.coef_, self.intercept_, C)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise HarmscopeError(f"{self.backend} classifier is not fitted")
        F = self._features(texts_of(X))
        return np.asarray(F @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        return _proba(self.decision_function(X))

