"""Rule-id interaction blocks of the rule head: layout, fall-back to the generic part, storage."""

import numpy as np
import pytest

from harmscope.classifiers.judges.rule_model import N_PROTO, RuleHead, rule_blocks


def _pairs(n: int, d: int = 2) -> np.ndarray:
    # [r, x, r*x, |r-x|, p, p*x] (6 blocks of d) + N_PROTO prototype columns; x = columns d..2d
    X = np.zeros((n, 6 * d + N_PROTO), np.float32)
    X[:, d:2 * d] = np.arange(1, n * d + 1, dtype=np.float32).reshape(n, d)
    return X


def test_blocks_hold_the_scaled_reply_embedding_only_on_their_rule():
    X = _pairs(3)
    B = rule_blocks(X, ["a", "b", "zzz"], ["a", "b"], 2.0)
    assert B.shape == (3, X.shape[1] + 2 * 2)
    assert B[:, :X.shape[1]] == pytest.approx(X)
    a, b = B[:, X.shape[1]:X.shape[1] + 2], B[:, X.shape[1] + 2:]
    assert a.tolist() == [[2.0, 4.0], [0.0, 0.0], [0.0, 0.0]]  # row 0 is rule a: x = (1, 2), scaled by 2
    assert b.tolist() == [[0.0, 0.0], [6.0, 8.0], [0.0, 0.0]]  # row 1 is rule b: x = (3, 4)
    assert rule_blocks(X, None, [], 2.0) is X


def test_rules_without_data_fall_back_to_the_generic_head(tmp_path):
    X = _pairs(3)
    generic = np.linspace(-0.1, 0.1, X.shape[1]).astype(np.float32)
    rule_coef = np.concatenate([0.5 * generic, [1.0, 0.0], [0.0, -1.0]])
    h = RuleHead(generic, 0.2, rules=["a", "b"], scale=1.0, rule_coef=rule_coef, rule_intercept=-0.3)
    plain = RuleHead(generic, 0.2)
    p = h.proba(X, ["a", "b", "other"])
    zg = X @ generic + 0.2
    zr = X @ (0.5 * generic) - 0.3 + np.array([1.0 * 1 + 0.0, -1.0 * 4, 0.0])  # row a: x0=1; row b: x1=4
    assert p[:2] == pytest.approx(1 / (1 + np.exp(-zr[:2])), rel=1e-5)
    assert p[2] == pytest.approx(1 / (1 + np.exp(-zg[2])), rel=1e-5)  # no data for "other": generic head
    assert h.proba(X) == pytest.approx(plain.proba(X))  # no rule ids (a bare rule text): generic head
    h.save(tmp_path / "r.npz")
    back = RuleHead.load(tmp_path / "r.npz")
    assert back.rules == ["a", "b"] and back.scale == 1.0 and back.digest == h.digest != plain.digest
    assert back.proba(X, ["a", "b", "other"]) == pytest.approx(p, rel=1e-5)
    plain.save(tmp_path / "p.npz")  # older heads (no rule model) still load
    assert RuleHead.load(tmp_path / "p.npz").rules == [] and RuleHead.load(tmp_path / "p.npz").digest == plain.digest
