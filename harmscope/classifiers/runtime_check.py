"""Accuracy guard for the encoder runtimes: agreement between runtimes, and judge validation
figures recomputed per runtime (the figures that drive judge-error correction must be those of
the runtime in use).

    python -m harmscope.classifiers.runtime_check agree [--n 200]
    python -m harmscope.classifiers.runtime_check revalidate --judge refusal [--data labelled.jsonl]

``revalidate`` judges the labelled file once per runtime and writes
``<judge>.runtimes.json`` beside the built-in validation figures, keyed by the judge's
``full_version`` (weights digest + runtime tag); :meth:`Judge.validation` prefers the entry of
the runtime in use and falls back to the built-in figures once the head is retrained.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

from harmscope.classifiers.onnx_runtime import ENV_RUNTIME, RUNTIMES, onnx_available
from harmscope.errors import HarmscopeError

COUNTS = ("n", "tp", "fn", "tn", "fp")


@contextlib.contextmanager
def using_runtime(runtime: str) -> Iterator[None]:
    """Set ``$HARMSCOPE_ENCODER_RUNTIME`` within the block (restored after)."""
    old = os.environ.get(ENV_RUNTIME)
    os.environ[ENV_RUNTIME] = runtime
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_RUNTIME, None)
        else:
            os.environ[ENV_RUNTIME] = old


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
def revalidate_cmd(judge: str, data: str | None, runtimes: tuple[str, ...]) -> None:
    """Recompute a judge's validation figures per encoder runtime."""
    res = revalidate(judge, data, list(runtimes) or None)
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
