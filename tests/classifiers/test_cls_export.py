"""finetune -> Detoxify export with a tiny random BERT, checked with the detoxify package itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmscope.classifiers.backends import DetoxifyClassifier, FinetuneClassifier, load_classifier
from harmscope.classifiers.corpus import corpus_split
from harmscope.classifiers.export import export_detoxify
from harmscope.errors import HarmscopeError, InputError

pytestmark = pytest.mark.neural
torch = pytest.importorskip("torch")
detoxify = pytest.importorskip("detoxify")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared, loaded 2-core box: one intra-op thread avoids spin contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", autouse=True)
def torch_runtime():
    """Detoxify parity (1e-5) and the tiny model's 1e-5-wide score spread are properties of the
    fp32 reference path; int8 ONNX is checked in test_encoder_runtime.py."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HARMSCOPE_ENCODER_RUNTIME", "torch")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A 2-layer, 32-wide BERT with the MiniLM tokenizer (random weights, built offline)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from harmscope.classifiers.encoder import minilm_path

    d = tmp_path_factory.mktemp("tiny")
    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def fitted(tiny_base):
    c = corpus_split("clean").copy()
    c["insult"] = (c["kind"] == "insult").astype(float)  # a second head, like a Jigsaw subtype
    m = FinetuneClassifier(base_model=str(tiny_base), max_steps=60, learning_rate=1e-3,
                           subtype_cols=("insult",), seed=0)
    return m.fit(c, c["label"])


def test_finetune_learns_and_is_deterministic(fitted, tiny_base):
    from sklearn.metrics import roc_auc_score

    e = corpus_split("eval")
    assert roc_auc_score(e["label"], fitted.predict_proba(e)[:, 1]) > 0.8
    heads = fitted.predict_all(e.head(20))
    assert heads.shape == (20, 2)
    c = corpus_split("clean").copy()
    c["insult"] = (c["kind"] == "insult").astype(float)
    again = FinetuneClassifier(base_model=str(tiny_base), max_steps=60, learning_rate=1e-3,
                               subtype_cols=("insult",), seed=0).fit(c, c["label"])
    np.testing.assert_allclose(again.predict_proba(e.head(50)), fitted.predict_proba(e.head(50)), atol=1e-6)


def test_save_load_identical(fitted, tmp_path):
    texts = corpus_split("eval")["text"].head(64).tolist()
    fitted.save(tmp_path / "ft")
    m2 = load_classifier(tmp_path / "ft")
    assert isinstance(m2, FinetuneClassifier) and m2.class_names == ["toxicity", "insult"]
    np.testing.assert_allclose(m2.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)


def test_detoxify_loads_export_and_predicts_identically(fitted, tmp_path):
    texts = corpus_split("eval")["text"].head(64).tolist() + ["a much longer comment " * 30]
    ckpt = export_detoxify(fitted, tmp_path / "dx")
    det = detoxify.Detoxify(checkpoint=str(ckpt), huggingface_config_path=str(tmp_path / "dx" / "config"))
    res = det.predict(texts)
    assert set(res) == {"toxicity", "insult"}
    ours = fitted.predict_all(texts)
    np.testing.assert_allclose(res["toxicity"], ours[:, 0], atol=1e-5)
    np.testing.assert_allclose(res["insult"], ours[:, 1], atol=1e-5)
    # and back through harmscope: by checkpoint spec and by the exported folder
    for spec in (f"detoxify:{ckpt}", str(tmp_path / "dx")):
        np.testing.assert_allclose(load_classifier(spec).predict_proba(texts)[:, 1], ours[:, 0], atol=1e-5)
    card = json.loads((tmp_path / "dx" / "model.json").read_text())
    assert card["backend"] == "detoxify-export" and card["classes"] == ["toxicity", "insult"]


def _rewrite(ckpt, out, **changes):
    obj = torch.load(ckpt, weights_only=False)
    for k, v in changes.items():
        if k == "classes":
            obj["config"]["dataset"]["args"]["classes"] = v
        else:
            obj["config"]["arch"]["args"][k] = v
    torch.save(obj, out)
    return out


def test_detoxify_rejects_unsafe_or_inconsistent_checkpoints(fitted, tmp_path):
    ckpt = export_detoxify(fitted, tmp_path / "dx")
    cfg = tmp_path / "dx" / "config"
    hub = _rewrite(ckpt, tmp_path / "hub.ckpt", model_type="bert-base-uncased")
    with pytest.raises(InputError, match="not a local config folder"):
        DetoxifyClassifier(checkpoint=str(hub)).predict_proba(["x"])
    # the hub name is rewritten to the given config folder: loads offline
    p = load_classifier(f"detoxify:{hub}::{cfg}").predict_proba(["hello there"])
    assert p.shape == (1, 2)
    auto = _rewrite(ckpt, tmp_path / "auto.ckpt", model_name="AutoModelForSequenceClassification")
    with pytest.raises(InputError, match="concrete transformers class"):
        DetoxifyClassifier(checkpoint=str(auto)).predict_proba(["x"])
    three = _rewrite(ckpt, tmp_path / "three.ckpt", classes=["toxic", "insult", "threat"])
    with pytest.raises(InputError, match="num_labels is 2 but the checkpoint has 3"):
        DetoxifyClassifier(checkpoint=str(three)).predict_proba(["x"])
    with pytest.raises(InputError, match="not found"):
        DetoxifyClassifier(checkpoint=str(tmp_path / "missing.ckpt")).predict_proba(["x"])
    with pytest.raises(HarmscopeError, match="only scores"):
        DetoxifyClassifier(checkpoint=str(ckpt)).fit(["a"], [1])
