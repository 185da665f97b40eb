"""Behavioural contract over every registered classifier backend (plugins included).

Each backend fits on a toy set, predicts an (n, k) array of probabilities, is deterministic under
its seed, survives save -> load_classifier with identical outputs, and is rebuilt from its stored
spec (name, version, arguments). Toy sizes only: MiniLM-based backends encode 48 short texts and
finetune runs two optimiser steps.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from harmscope.classifiers.backends import BACKENDS, load_classifier, save_model
from harmscope.classifiers.backends.base import BaseBackend

BAD = ["you are a worthless idiot", "shut up you stupid fool", "i hate you, moron", "go away, loser trash",
       "what a pathetic idiot", "you disgusting creep"]
GOOD = ["have a lovely day", "thanks for the kind help", "the weather is nice today", "see you at lunch",
        "great work on the report", "the garden looks beautiful"]
#: fast settings per backend; a plugin backend is built with its defaults
TOY_PARAMS = {
    "finetune": {"max_steps": 2, "batch_size": 8, "max_length": 16, "eval_batch_size": 16},
    "multihead": {"bits": 12, "cal_fraction": 0.3},
    "tfidf": {"bits": 14},
}
#: backends that cannot be fitted by design, with the reason
SCORE_ONLY = {"detoxify": "scores with a user-supplied Detoxify checkpoint; it has no fit (nothing to ship)"}


def _toy(seed: int = 0, n: int = 48) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    texts = [f"{rng.choice(BAD if v else GOOD)} {i}" for i, v in enumerate(y)]
    return pd.DataFrame({"text": texts}), y


def _make(name: str) -> BaseBackend:
    return BACKENDS.get(name).obj(**TOY_PARAMS.get(name, {}))


@pytest.fixture(scope="module", autouse=True)
def _torch_runtime():
    """Score transformer backends with torch: the ONNX export is covered by test_encoder_runtime."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARMSCOPE_ENCODER_RUNTIME", "torch")
        yield


@pytest.fixture(scope="module", params=BACKENDS.names())
def fitted(request):
    """Each backend fitted once on the toy set (module scope: the tests below only read it)."""
    name = request.param
    if name in SCORE_ONLY:
        pytest.skip(f"{name}: {SCORE_ONLY[name]}")
    X, y = _toy()
    return name, _make(name).fit(X, y)


def test_every_backend_declares_its_metadata_once():
    for entry in BACKENDS:
        cls = entry.obj
        assert issubclass(cls, BaseBackend), entry.name
        assert (cls.name, str(cls.version)) == (entry.name, entry.version)
        assert entry.description


def test_fit_predicts_an_n_by_k_probability_array(fitted):
    name, model = fitted
    X, y = _toy(seed=1, n=20)
    p = model.predict_proba(X)
    assert isinstance(p, np.ndarray) and p.ndim == 2 and p.shape[0] == 20 and p.shape[1] >= 2, name
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert set(np.unique(model.predict(X))) <= {0, 1}
    # a plain list of texts is accepted as well as a frame
    np.testing.assert_array_equal(model.predict_proba(list(X["text"])), p)


def test_the_toy_task_is_learnt(fitted):
    name, model = fitted
    if name == "finetune":
        pytest.skip("finetune: two optimiser steps on a toy set do not have to learn it")
    X, y = _toy(seed=2, n=40)
    p = model.predict_proba(X)[:, 1]
    assert p[y == 1].mean() > p[y == 0].mean() + 0.05, name


def test_fit_is_deterministic_under_the_seed(fitted):
    name, model = fitted
    X, y = _toy()
    again = _make(name).fit(X, y)
    Xt, _ = _toy(seed=3, n=16)
    np.testing.assert_allclose(again.predict_proba(Xt), model.predict_proba(Xt), rtol=0, atol=1e-6)


def test_save_and_load_give_identical_outputs(fitted, tmp_path):
    name, model = fitted
    out = save_model(model, tmp_path / name)
    loaded = load_classifier(out)
    assert type(loaded) is type(model) and loaded.backend == name
    Xt, _ = _toy(seed=4, n=16)
    np.testing.assert_allclose(loaded.predict_proba(Xt), model.predict_proba(Xt), rtol=0, atol=1e-6)
    assert not any(p.suffix in (".pkl", ".pickle", ".joblib") for p in out.rglob("*"))


@pytest.mark.parametrize("name", BACKENDS.names())
def test_backend_is_rebuilt_from_its_spec(name):
    entry = BACKENDS.get(name)
    params = TOY_PARAMS.get(name, {})
    spec = entry.spec(**params)
    assert (spec.kind, spec.name, spec.version) == ("classifier backend", name, entry.version)
    rebuilt = BACKENDS.create(spec)
    assert type(rebuilt) is entry.obj and rebuilt.get_params() == entry.obj(**params).get_params()


def test_tfidf_use_does_not_import_torch():
    code = ("import sys\nfrom harmscope.classifiers.backends import TfidfClassifier\n"
            "m = TfidfClassifier(bits=12).fit(['idiot fool', 'nice day', 'stupid idiot', 'lovely day'], [1, 0, 1, 0])\n"
            "m.predict_proba(['idiot'])\n"
            "print(sorted(k for k in ('torch', 'transformers', 'onnxruntime') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
