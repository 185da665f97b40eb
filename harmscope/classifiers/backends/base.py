"""What every classifier backend shares: the :data:`BACKENDS` registry, the estimator base class,
safe loading of untrusted model folders, atomic saving, and :func:`load_classifier`.

A backend is an sklearn-style estimator over raw texts registered with a bare
``@BACKENDS.register``; it declares ``name``, ``version`` and ``description`` as class attributes.
It offers ``fit(X, y, sample_weight=None)``, ``partial_fit`` (continue from the current weights),
``predict_proba(X) -> (n, 2)``, ``predict``, ``save(dir)`` and ``Class.load(dir)``. ``X`` is a
list/array/Series of texts or a DataFrame with a ``text`` column. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from harmscope.errors import HarmscopeError, InputError
from harmscope.registry import Registry
from harmscope.safeio import atomic_dir, atomic_path, write_error

BACKENDS = Registry("classifier backend")
CARD = "model.json"
TRUST_ENV = "HARMSCOPE_TRUST_CHECKPOINT"  # os.pathsep-separated checkpoint files the user trusts


# ---------------------------------------------------------------- safe loading (untrusted folders)
def read_card(d: Path) -> dict[str, Any]:
    """``d/model.json`` as a dict; a missing, truncated or wrongly typed card is one InputError line."""
    p = Path(d) / CARD
    if not p.is_file():
        raise InputError(f"{d}: not a harmscope model folder (no {CARD})")
    try:
        card = json.loads(p.read_text(encoding="utf-8"), parse_constant=lambda c: None)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{p}: unreadable model card ({type(exc).__name__})") from None
    if not isinstance(card, dict):
        raise InputError(f"{p}: the model card must be a JSON object, not {type(card).__name__}")
    if not isinstance(card.get("params", {}), dict):
        raise InputError(f"{p}: field 'params' must be an object")
    if "backend" in card and not isinstance(card["backend"], str):
        raise InputError(f"{p}: field 'backend' must be a string")
    return card


def card_number(card: dict[str, Any], field: str, d: Path) -> float:
    """A finite number field of a model card."""
    v = card.get(field)
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
        raise InputError(f"{Path(d) / CARD}: field {field!r} must be a finite number, got {v!r}"[:300])
    return float(v)


def load_npy(path: Path, *, ndim: int = 1, length: int | None = None, integer: bool = False) -> np.ndarray:
    """A numeric ``.npy`` array, never unpickled; its shape and type checked (one line on failure)."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: missing from the model folder") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a numeric .npy array ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in ("iu" if integer else "iuf"):
        raise InputError(f"{path}: expected a {'integer' if integer else 'numeric'} array, got dtype {a.dtype}")
    if a.ndim != ndim or (length is not None and a.shape[0] != length):
        want = f"length {length}" if length is not None else f"{ndim}-D"
        raise InputError(f"{path}: wrong shape {tuple(a.shape)} (expected {want})")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InputError(f"{path}: holds NaN or infinite values")
    return a


def trusted_checkpoints() -> set[str]:
    """Checkpoint files the user trusted explicitly (``harmscope --trust-checkpoint FILE``)."""
    raw = os.environ.get(TRUST_ENV, "")
    return {str(Path(p).expanduser().resolve()) for p in raw.split(os.pathsep) if p.strip()}


def torch_load_checked(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; a file that needs unpickling is refused unless
    the user trusted that very file. Never runs code from an untrusted file."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError, EOFError) as exc:
        if str(path.resolve()) not in trusted_checkpoints():
            kind = "needs unpickling (which can run code)" if isinstance(exc, pickle.UnpicklingError) else (
                f"is not a readable torch checkpoint ({type(exc).__name__})")
            raise InputError(f"{path}: checkpoint {kind}; refused. If you trust this file, pass "
                             f"--trust-checkpoint {path}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read checkpoint ({exc.strerror or type(exc).__name__})") from None
    try:  # the user named this exact file as trusted
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any failure of a trusted file is still one line
        raise InputError(f"{path}: cannot load checkpoint ({type(exc).__name__})") from None


def save_model(model: Any, d: str | Path, *, card: dict[str, Any] | None = None) -> Path:
    """Save ``model`` into folder ``d`` atomically: written whole to a temporary folder, then
    swapped in; on failure (disk full, Ctrl-C) the previous model in ``d`` is kept."""
    d = Path(d)
    foreign = d.is_dir() and any(d.iterdir()) and not (d / CARD).is_file()
    if not foreign:
        with atomic_dir(d) as tmp:
            model.save(tmp, card=card)
        return d
    # a folder holding other files: never replace it wholesale; move each complete file in
    with atomic_dir(d.parent / f".{d.name}.staging") as tmp:
        model.save(tmp, card=card)
    staged = d.parent / f".{d.name}.staging"
    try:
        for entry in sorted(staged.iterdir(), key=lambda e: e.name == CARD):  # the card last
            target = d / entry.name
            if entry.is_dir():
                if target.exists():
                    shutil.rmtree(target)
                os.replace(entry, target)
            else:
                with atomic_path(target) as t:
                    shutil.copyfile(entry, t)
    except OSError as exc:
        raise write_error(d, exc, kept=False) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return d


def texts_of(X: Any) -> list[str]:
    """Texts from a list, array, Series or a DataFrame with a ``text`` column."""
    if isinstance(X, pd.DataFrame):
        if "text" not in X.columns:
            raise InputError("classifier input: missing column 'text'")
        X = X["text"]
    if isinstance(X, str):
        raise HarmscopeError("classifier input must be a list of texts, not one string")
    return [str(t) for t in X]


def versions() -> dict[str, str]:
    """Versions of the packages that define a model (for the model card)."""
    out = {"python": platform.python_version()}
    for pkg in ("harmscope", "scikit-learn", "numpy", "torch", "transformers", "detoxify"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}


class BaseBackend(ClassifierMixin, BaseEstimator):
    """Base class of the backends: ``predict`` at 0.5 and the model card (``model.json``).

    A subclass declares ``name``, ``version`` and ``description`` as class attributes (read by
    ``@BACKENDS.register``); ``name`` is also the card's ``backend`` field.
    """

    name = ""  # each backend declares name, version and description
    description = ""

    @property
    def backend(self) -> str:
        """The registered name, written to the model card as ``backend``."""
        return self.name

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def _card(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        card = {"backend": self.backend, "params": _json_params(self.get_params()),
                "versions": versions()}
        card.update(getattr(self, "card_", {}) or {})
        card.update(extra or {})
        return card

    def _write_card(self, d: Path, extra: dict[str, Any] | None = None) -> None:
        (d / CARD).write_text(json.dumps(self._card(extra), indent=2, default=str), encoding="utf-8")

    @staticmethod
    def _read_card(d: Path) -> dict[str, Any]:
        return read_card(Path(d))


def check_labels(y: Any, n: int) -> np.ndarray:
    """0/1 training labels, one per text."""
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(y) != n:
        raise HarmscopeError(f"fit: {n} texts but {len(y)} labels")
    if not np.isin(y, (0.0, 1.0)).all():
        raise HarmscopeError("fit: labels must be 0/1 (use the 'soft' strategy for fractions)")
    return y.astype(int)

def default_model_dir() -> Path:
    """The folder of the shipped default classifier (``--classifier default``)."""
    return Path(__file__).resolve().parents[1] / "default"


def construct(cls: Any, params: dict[str, Any], d: Path) -> Any:
    """``cls(**params)`` from a model card; unknown or wrongly typed params are one line."""
    try:
        return cls(**params)
    except TypeError as exc:
        raise InputError(f"{Path(d) / CARD}: bad 'params' ({exc})") from None


def load_classifier(spec: str | Path, **params: Any) -> Any:
    """A saved model folder, ``detoxify:CHECKPOINT[::CONFIG_DIR]``, a folder exported by
    :func:`harmscope.classifiers.export.export_detoxify`, or a backend name (unfitted)."""
    s = str(spec)
    if s == "default" and not Path(s).exists():  # the shipped multi-head model
        d = default_model_dir()
        if not (d / CARD).is_file():
            raise InputError(f"{d}: the default classifier is not installed (rebuild: harmscope experiment "
                             "build-default)")
        return BACKENDS.get("multihead").obj.load(d)
    if s.startswith("detoxify:"):
        detoxify = BACKENDS.get("detoxify").obj
        rest = s[len("detoxify:"):]
        ckpt, _, cfg = rest.partition("::")
        if not ckpt:
            return detoxify(**params)
        return detoxify(checkpoint=str(Path(ckpt).expanduser().resolve()),
                                  config_path=str(Path(cfg).expanduser().resolve()) if cfg else None, **params)
    p = Path(s)
    if p.is_dir() and (p / CARD).is_file():
        card = read_card(p)
        backend = card.get("backend")
        if backend not in BACKENDS and backend != "detoxify-export":
            raise InputError(f"{p / CARD}: field 'backend' is {backend!r}, not one of "
                             f"{', '.join(BACKENDS.names())}")
        if backend == "detoxify-export" and (p / "checkpoint.ckpt").is_file():
            return BACKENDS.get("detoxify").obj(checkpoint=str((p / "checkpoint.ckpt").resolve()),
                                      config_path=str((p / "config").resolve()), **params)
        return BACKENDS.get(str(backend)).obj.load(p)
    if s in BACKENDS:
        return BACKENDS.get(s).obj(**params)
    if p.exists():
        raise InputError(f"{s}: not a harmscope model folder (no {CARD}); for a Detoxify checkpoint "
                         "use detoxify:PATH")
    raise InputError(f"{s}: unknown classifier (a model folder, detoxify:CHECKPOINT, or one of "
                     f"{', '.join(BACKENDS.names())})")

