"""Local and replicated runs share one set-up: same run id, counts, probes and manifest for the same input."""

from __future__ import annotations

import pytest

from harmscope.benchmarks.probes.transforms import TRANSFORMS
from harmscope.benchmarks.runs.engine import plan_run, run_probes
from harmscope.benchmarks.runs.replicas import run_replicas
from harmscope.benchmarks.runs.store import Store, read_run_info
from harmscope.errors import HarmscopeError
from harmscope.models import MODELS, GenParams, load_model
from harmscope.models.testing import make_probe_set

SPEC = "baseline:echo"


def _probes_with_a_duplicate(n: int):
    ps = make_probe_set(n)
    ps.probes = [*ps.probes, ps.probes[3]]  # the same probe twice: sent once
    return ps


def test_local_and_replicated_runs_have_the_same_set_up(tmp_path):
    ps = _probes_with_a_duplicate(12)
    params = GenParams(max_tokens=32)
    local = run_probes(ps, load_model(SPEC), Store(tmp_path / "a.sqlite"), params=params, samples=2,
                       progress=False, run_dir=tmp_path / "local")
    rep = run_replicas(ps, [SPEC], Store(tmp_path / "b.sqlite"), params=params, samples=2, engine="local",
                       batch_size=5, progress=False, run_dir=tmp_path / "rep")
    assert rep.run_id == local.run_id
    assert local.counts == rep.counts == {"total": 24, "answered": 24, "failed": 0, "cached": 0, "missing": 0,
                                          "retries": 0}
    for k in ("probe_set_hash", "model", "components"):
        assert getattr(rep, k) == getattr(local, k), k
    strip = lambda m: {k: v for k, v in m.params.items() if k != "engine"}  # noqa: E731
    assert strip(rep) == strip(local)
    a = {(r.probe_id, r.sample): r.text for r in Store(tmp_path / "a.sqlite").replies(local.run_id)}
    b = {(r.probe_id, r.sample): r.text for r in Store(tmp_path / "b.sqlite").replies(rep.run_id)}
    assert a == b and len(a) == 24
    # both write the same run directory contents (run.json points at the run)
    assert read_run_info(tmp_path / "local").run_id == read_run_info(tmp_path / "rep").run_id == local.run_id
    # a replica run over the local run's store finds every reply already there
    again = run_replicas(ps, [SPEC], Store(tmp_path / "a.sqlite"), params=params, samples=2, engine="local",
                         progress=False)
    assert again.counts["cached"] == 24 and again.counts["answered"] == 0
    assert again.started_at == local.started_at


def test_manifest_stores_the_model_adapter_spec(tmp_path):
    model = load_model(SPEC)
    m = run_probes(make_probe_set(3), model, Store(tmp_path / "s.sqlite"), progress=False)
    assert m.components == [model.component_spec()]
    assert len(m.components) == 1 and m.components[0].args  # the adapter's arguments, enough to rebuild it
    back = Store(tmp_path / "s.sqlite").get_run(m.run_id)
    assert back.components == m.components
    assert MODELS.create(back.components[0]).spec_hash == model.spec_hash


def test_manifest_stores_every_transform_the_probes_used(tmp_path):
    ps = make_probe_set(4)
    ps.probes = [ps.probes[0].model_copy(update={"transforms": ["base64", "roleplay"]}),
                 ps.probes[1].model_copy(update={"transforms": ["base64"]}), *ps.probes[2:]]
    m = run_probes(ps, load_model(SPEC), Store(tmp_path / "s.sqlite"), progress=False)
    assert [(c.kind, c.name) for c in m.components] == [("model adapter", "baseline"), ("transform", "base64"),
                                                         ("transform", "roleplay")]
    assert m.components[1] == TRANSFORMS.get("base64").spec()


def test_plan_run_dedups_and_checks_samples():
    ps = _probes_with_a_duplicate(5)
    plan = plan_run(ps, load_model(SPEC), None, 3)
    assert [p.id for p in plan.probes] == [p.id for p in ps.probes[:5]]
    assert len(plan.keys) == 15 and len(set(plan.keys.values())) == 15
    assert list(plan.keys)[:3] == [(ps.probes[0].id, 0), (ps.probes[0].id, 1), (ps.probes[0].id, 2)]
    with pytest.raises(HarmscopeError, match="samples must be >= 1"):
        plan_run(ps, load_model(SPEC), None, 0)
