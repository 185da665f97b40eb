"""Accuracy guard for the encoder runtimes: agreement between runtimes, and judge validation
figures recomputed per runtime (the figures that drive judge-error correction must be those of
the runtime in use).

    python -m harmscope.classifiers.runtime_check agree [--n 200]
    python -m harmscope.classifiers.runtime_check revalidate --judge refusal [--data labelled.jsonl]
    python -m harmscope.classifiers.runtime_check revalidate --judge refusal --loso --runtime torch --runtime onnx

``revalidate`` judges the labelled file once per runtime and writes
``<judge>.runtimes.json`` beside the built-in validation figures, keyed by the judge's
``full_version`` (weights digest + runtime tag); :meth:`Judge.validation` prefers the entry of
the runtime in use and falls back to the built-in figures once the head is retrained.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from harmscope.classifiers.onnx_runtime import RUNTIMES, onnx_available, using_runtime
from harmscope.errors import HarmscopeError

COUNTS = ("n", "tp", "fn", "tn", "fp")


def available_runtimes() -> list[str]:
    """Runtimes usable here (``torch`` always; the ONNX ones when onnxruntime is installed)."""
    return [r for r in RUNTIMES if r == "torch" or onnx_available()]


def embedding_agreement(texts: list[str], a: str = "torch", b: str = "onnx") -> dict[str, float]:
    """Cosine similarity between the embeddings of ``texts`` on runtimes ``a`` and ``b``."""
    from harmscope.classifiers.encoder import MiniLMEncoder

    ea = MiniLMEncoder(runtime=a, cache=False).encode(texts)
    eb = MiniLMEncoder(runtime=b, cache=False).encode(texts)
    cos = (ea * eb).sum(1) / np.maximum(np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1), 1e-12)
    return {"n": len(texts), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "p01_cosine": float(np.quantile(cos, 0.01))}


def _validator(judge: str, data: str | Path | None) -> Any:
    """``() -> {"source", "metrics"}`` for ``judge``: the built-in fresh check sets of the refusal
    and rule judges when ``data`` is None, else ``judges validate`` on ``data``."""
    from harmscope.classifiers.judges import train
    from harmscope.classifiers.judges.validate import validate_judge

    if data is None:
        builtin = {"refusal": train.validate_refusal_fresh, "rule": train.validate_rule_fresh}
        if judge not in builtin:
            raise HarmscopeError(f"judge {judge!r}: no built-in check set; pass --data")
        return builtin[judge]
    return lambda: validate_judge(judge, data, save=False)


def loso_validator(judge: str, *, seed: int | None = None,
                   say: Callable[[str], None] | None = None) -> Callable[[], dict[str, Any]]:
    """``() -> {"source", "metrics"}``: ``judge``'s leave-one-source-out figures (the stored
    ``metrics``) with the held-out rows featurised on the runtime in use.

    Same data sample, folds, seed and training as ``judges train``: every fold's head is trained
    on torch fp32 features (as the shipped heads are); only the held-out fold's features come
    from ``$HARMSCOPE_ENCODER_RUNTIME``, which is what a user of that runtime gets. On torch it
    reproduces the stored figures exactly. Embeddings go through the per-encoder disk cache
    (``$HARMSCOPE_EMB_CACHE``)."""
    from harmscope.classifiers.judges import fit as F
    from harmscope.classifiers.onnx_runtime import resolve_runtime

    if judge not in F.CONFIG:
        raise HarmscopeError(f"--judge {judge!r}: leave-one-source-out revalidation covers {', '.join(F.CONFIG)}")
    seed = F.SEED if seed is None else seed
    state: dict[str, Any] = {}

    def frame() -> pd.DataFrame:
        names = list(F.TRAIN_SETS[judge])
        eval_only = [n for n in F.EVAL_ONLY.get(judge, []) if n not in names]
        df = F.load_frame(names, seed=seed, judge=judge, mark_sample=F.cross_all_rows(F.CONFIG[judge])
                          ).assign(_train=True)
        if eval_only:
            df = pd.concat([df, F.load_frame(eval_only, seed=seed, judge=judge).assign(_train=False)],
                           ignore_index=True)
        return df

    def run_reply() -> dict[str, Any]:
        if "d" not in state:
            df = frame()
            m, y = F.targets(judge, df)
            d = df[m].reset_index(drop=True)
            with using_runtime("torch"):
                P, X = F.encode_frame(d)
            cfg = F.CONFIG[judge]
            Ft = F.features(d, P, X)
            state.update(d=d, y=y[m], F=Ft, cross=F.cross_data(d, cfg, Ft, say))
        d, y, Ft = state["d"], state["y"], state["F"]
        rt = resolve_runtime(None)
        Fe = Ft if rt == "torch" else F.features(d, *F.encode_frame(d))
        fit_once = F._fit
        heads: dict[str, Any] = state.setdefault("heads", {})

        def memo_fit(X: np.ndarray, yy: np.ndarray, cfg: dict[str, Any], sd: int, texts: Any = None,
                     **kw: Any) -> Any:
            # the fold heads are trained on torch features whatever the runtime: fit each once
            h = hashlib.blake2b(X.tobytes(), digest_size=16)
            h.update(np.asarray(yy).astype(str).tobytes())
            h.update("\0".join(map(str, [] if texts is None else texts)).encode("utf-8", "surrogatepass"))
            for name in ("rows", "cross_rows", "cross_y"):  # the cross-encoder's rows are part of the fold
                v = kw.get(name)
                h.update(name.encode() + (b"-" if v is None else np.asarray(v).astype(np.int64).tobytes()))
            key = f"{h.hexdigest()}:{sd}:{sorted(cfg.items())}"
            if key not in heads:
                heads[key] = fit_once(X, yy, cfg, sd, texts, **kw)
            return heads[key]

        F._fit = memo_fit
        try:
            lo, _ = F.loso(judge, d, Ft, y, F.CONFIG[judge], seed=seed, say=say,
                           trainable=d["_train"].to_numpy(bool), texts=d["reply"].astype(str).to_numpy(object),
                           X_eval=Fe, cross=state["cross"])
        finally:
            F._fit = fit_once
        positive = "complied (not refusal or partial)" if judge == "refusal" else "harmful reply"
        hm = F.head_mask(d)
        n = len(d) if hm is None else int(hm.sum())
        return {"source": f"leave-one-source-out on {n} human-labelled replies (heads trained on torch fp32 "
                          f"features as shipped, held-out rows featurised on {rt!r})",
                "metrics": {**lo["pooled"], "positive": positive}, "per_source": lo["per_source"]}

    def run_rule() -> dict[str, Any]:
        import tempfile

        from harmscope.classifiers.judges.rule_model import train_rule_head
        from harmscope.rules import load_catalog

        if "df" not in state:
            state["df"] = frame()
        rt = resolve_runtime(None)

        def torch_embed(texts: list[str]) -> np.ndarray:
            with using_runtime("torch"):
                return F._cached_embed(texts)

        with tempfile.TemporaryDirectory() as tmp:
            res = train_rule_head(list(dict(load_catalog().rules).values()), data=state["df"], out=Path(tmp),
                                  C=float(F.CONFIG["rule"].get("C", 0.05)), seed=seed, embed_fn=torch_embed,
                                  block_scale=float(F.CONFIG["rule"].get("rule_blocks", 0.0)), say=say,
                                  eval_embed_fn=None if rt == "torch" else F._cached_embed, cv=False,
                                  cross=F.CONFIG["rule"].get("cross"), cache_dir=F.emb_cache_dir())
        return {"source": res["source"].replace("; these figures", f" (heads trained on torch fp32 features as "
                                                f"shipped, held-out pairs featurised on {rt!r}); these figures"),
                "metrics": res["metrics"], "per_source": res["loso"]["per_source"]}

    return run_rule if judge == "rule" else run_reply


def revalidate(judge: str, data: str | Path | None = None, runtimes: list[str] | None = None, *,
               out: Path | None = None, validator: Callable[[], dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """Recompute ``judge``'s validation figures for each runtime (on ``data``, or the judge's
    built-in check set); write them to ``<judge>.runtimes.json`` keyed by full_version and
    return {runtime: payload}. ``validator`` (``() -> {"source", "metrics"}``, run once per
    runtime with ``$HARMSCOPE_ENCODER_RUNTIME`` set) replaces the default, e.g. a judge's
    leave-one-source-out evaluation.

    The torch run must reproduce the stored confusion counts exactly (otherwise the data is not
    what the stored figures came from, and nothing is written)."""
    from harmscope.classifiers.judges.base import VALIDATION_DIR
    from harmscope.classifiers.judges.ensemble import load_judge

    runtimes = list(runtimes or available_runtimes())
    if "torch" not in runtimes:
        runtimes.insert(0, "torch")  # the reference: it must reproduce the stored figures
    validator = validator or _validator(judge, data)
    base_path = VALIDATION_DIR / f"{judge}.json"
    base = json.loads(base_path.read_text(encoding="utf-8")) if base_path.is_file() else {}
    dest = out or VALIDATION_DIR / f"{judge}.runtimes.json"
    table = json.loads(dest.read_text(encoding="utf-8")) if dest.is_file() else {}
    results: dict[str, Any] = {}
    for rt in runtimes:
        with using_runtime(rt):
            j, _ = load_judge(judge)
            res = validator()
            if rt == "torch" and base.get("metrics"):
                want = tuple(base["metrics"].get(k) for k in COUNTS)
                got = tuple(res["metrics"].get(k) for k in COUNTS)
                if want != got:
                    raise HarmscopeError(
                        f"{base_path}: the stored figures (n, tp, fn, tn, fp = {want}) are not reproduced by "
                        f"this check set on torch ({got}); recompute them from the data they came from")
            payload = {k: v for k, v in base.items() if k not in ("metrics", "source")}
            payload.update({
                "metrics": res["metrics"], "runtime": rt, "version": j.full_version,
                "source": f"{res['source']}; recomputed on encoder runtime {rt!r}"
                          + ("; other blocks are torch fp32 training-time figures" if len(payload) else ""),
            })
            results[rt] = payload
            table[j.full_version] = payload
    keep = {p["version"].split("+onnx")[0] for p in results.values()}
    table = {k: v for k, v in table.items() if k.split("+onnx")[0] in keep}  # drop retrained heads
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, dest)
    return results


@click.group()
def main() -> None:
    """Encoder runtime checks."""


@main.command("agree")
@click.option("--n", default=200, show_default=True, help="texts from the refusal-judge data")
@click.option("--against", default="onnx", show_default=True, type=click.Choice(["onnx", "onnx-fp32"]))
def agree_cmd(n: int, against: str) -> None:
    """Cosine similarity of embeddings, torch fp32 vs an ONNX runtime."""
    from harmscope.classifiers.judges.refusal import load_refusal_data

    texts = load_refusal_data()["text"].tolist()[:n]
    click.echo(json.dumps(embedding_agreement(texts, "torch", against), indent=2))


@main.command("revalidate")
@click.option("--judge", "judge", required=True, help="judge name (refusal, rule, ...)")
@click.option("--data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="labelled JSONL/CSV (default: the judge's built-in fresh check set)")
@click.option("--runtime", "runtimes", multiple=True, type=click.Choice(RUNTIMES),
              help="runtimes to recompute (default: all available)")
@click.option("--loso", is_flag=True, help="the stored leave-one-source-out figures (refusal, harm, rule): heads "
              "trained on torch features as shipped, held-out folds featurised on each runtime")
def revalidate_cmd(judge: str, data: str | None, runtimes: tuple[str, ...], loso: bool) -> None:
    """Recompute a judge's validation figures per encoder runtime."""
    if loso and data:
        raise HarmscopeError("--loso and --data: choose one")
    validator = loso_validator(judge, say=lambda m: click.echo(m, err=True)) if loso else None
    res = revalidate(judge, data, list(runtimes) or None, validator=validator)
    for rt, p in res.items():
        m = p["metrics"]
        click.echo(f"{judge} [{rt}] version {p['version']}: n={m['n']} auc={m.get('auc')} "
                   f"accuracy={m['accuracy']:.4f} tp={m['tp']} fn={m['fn']} tn={m['tn']} fp={m['fp']}")


def run() -> None:
    """Entry point: a HarmscopeError becomes one ``error:`` line and exit code 2."""
    try:
        main(standalone_mode=False)
    except HarmscopeError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Abort:
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    run()
