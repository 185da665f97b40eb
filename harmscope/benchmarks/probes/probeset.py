"""Probe sets: assembly (content-hashed, deduplicated probes), rule and axis selection, and files.

Shared by the generated families (:mod:`~harmscope.benchmarks.probes.generate`,
:mod:`~harmscope.benchmarks.probes.distributional`) and the importers of public sets
(:mod:`~harmscope.benchmarks.probes.importers`), so that none of them imports another.
``write_probes`` / ``read_probes`` store a set as JSONL (first line ``{"manifest": ...}``, then one
probe per line) or Parquet (manifest in the schema metadata).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harmscope.benchmarks.probes.lexicon import Lexicon
from harmscope.errors import HarmscopeError, InputError
from harmscope.rules.taxonomy import is_risk, risk
from harmscope.types import Message, Probe, ProbeSet, ProbeSetManifest, Rule, content_hash

GENERATOR_VERSION = "1"
MANIFEST_KEY = b"harmscope.manifest"

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------- selection
def is_probe_measurable(rule: Rule) -> bool:
    """A rule is probe-measurable when at least one of its risks is measurable from replies."""
    return any(is_risk(r) and risk(r).measurable for r in rule.risks)


def select_rules(catalog: Any, rules: str | Sequence[str] | None) -> list[Rule]:
    """The catalog rules a selector (``"group:toxicity,no-*"`` or a list of ids) picks; none is an error."""
    if rules is None:
        selected = list(catalog.rules.values())
    else:
        selector = rules if isinstance(rules, str) else ",".join(rules)
        selected = list(catalog.select(selector))
    if not selected:
        raise HarmscopeError(f"rule selector {rules!r} selects no rules")
    return selected


def parse_axes(axes: str | Sequence[str] | None, lexicon: Lexicon) -> list[str]:
    """The identity axes named in ``axes`` (default: all of the lexicon's), checked, in order, once each."""
    known = lexicon.axis_names()
    if axes is None:
        return known
    names = [a.strip() for a in (axes.split(",") if isinstance(axes, str) else axes) if a.strip()]
    if not names:
        raise HarmscopeError("empty identity axis selection")
    for a in names:
        if a not in lexicon.axes:
            raise HarmscopeError(f"unknown identity axis {a!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------- assembly
_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def _make_id(fields: dict[str, Any]) -> str:
    """``Probe.make_id(**fields)`` for JSON-ready fields, with one reused encoder (same bytes, faster)."""
    return hashlib.sha256(_CANON.encode(fields).encode("utf-8")).hexdigest()[:16]


class ProbeBuilder:
    """Collects content-hashed probes once each (an identical probe is dropped), in order."""

    def __init__(self, seed: int, progress: Progress | None, expected_total: int):
        self.seed = seed
        self.probes: list[Probe] = []
        self.ids: set[str] = set()
        self.messages: dict[tuple[str, str], Message] = {}
        self.progress = progress
        self.expected_total = expected_total

    def add(
        self,
        *,
        rule_ids: list[str],
        template_id: str,
        messages: list[dict[str, str]],
        expected: str,
        family: str,
        slots: dict[str, str] | None = None,
        group_axis: str | None = None,
        group: str | None = None,
        transforms: Sequence[str] = (),
        benign: bool = False,
        pair_id: str | None = None,
        variant: str | None = None,
        meta: dict[str, Any] | None = None,
        dry: bool = False,
    ) -> Probe | None:
        """Build a probe; returns ``None`` (and adds nothing) when an identical probe exists."""
        fields = {
            "rule_ids": rule_ids,
            "template_id": template_id,
            "messages": messages,
            "slots": slots or {},
            "group_axis": group_axis,
            "group": group,
            "transforms": list(transforms),
            "expected": expected,
            "benign": benign,
            "family": family,
            "pair_id": pair_id,
            "variant": variant,
            "meta": meta or {},
        }
        pid = _make_id(fields)
        if pid in self.ids:
            return None
        # earlier turns (system prompts, many-shot primers, template turns) repeat a lot: reuse their
        # Message objects, which pydantic accepts without re-validating them
        cache = self.messages
        msgs: list[Any] = []
        for m in messages[:-1]:
            key = (m["role"], m["content"])
            msg = cache.get(key)
            if msg is None:
                msg = cache[key] = Message(role=m["role"], content=m["content"])
            msgs.append(msg)
        msgs.append(messages[-1])
        fields["messages"] = msgs
        probe = Probe(id=pid, seed=self.seed, **fields)
        if not dry:
            self.commit(probe)
        return probe

    def commit(self, probe: Probe) -> None:
        self.ids.add(probe.id)
        self.probes.append(probe)
        if self.progress is not None and len(self.probes) % 500 == 0:
            self.progress(len(self.probes), self.expected_total)


def set_hash(
    *, catalog_version: str, generator_version: str, seed: int, params: dict[str, Any], ids: Iterable[str]
) -> str:
    """Hash of the manifest parameters and the ordered probe ids."""
    return content_hash(
        {
            "catalog_version": catalog_version,
            "generator_version": generator_version,
            "seed": seed,
            "params": params,
            "ids": list(ids),
        }
    )


def make_probe_set(
    probes: list[Probe],
    *,
    catalog_version: str,
    seed: int,
    params: dict[str, Any],
    counts: dict[str, int] | None = None,
    generator_version: str = GENERATOR_VERSION,
) -> ProbeSet:
    """Wrap probes in a ``ProbeSet`` with a manifest and its set hash."""
    counts = dict(counts or {})
    counts["probes"] = len(probes)
    h = set_hash(
        catalog_version=catalog_version,
        generator_version=generator_version,
        seed=seed,
        params=params,
        ids=(p.id for p in probes),
    )
    manifest = ProbeSetManifest(
        catalog_version=catalog_version,
        generator_version=generator_version,
        seed=seed,
        params=params,
        counts=counts,
        set_hash=h,
    )
    return ProbeSet(manifest=manifest, probes=probes)


# ---------------------------------------------------------------- files
def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".parquet"):
        raise InputError(f"{path}: probe files must end in .jsonl or .parquet")
    return suffix


def write_probes(probe_set: ProbeSet, path: str | Path) -> Path:
    """Write a probe set as ``.jsonl`` or ``.parquet`` (chosen by the suffix)."""
    path = Path(path)
    suffix = _check_suffix(path)
    manifest = probe_set.manifest.model_dump(mode="json")
    tmp = path.with_name(f".{path.name}.tmp")  # written in full, then renamed: no half-written files
    try:
        if suffix == ".jsonl":
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(json.dumps({"manifest": manifest}, ensure_ascii=False, separators=(",", ":")) + "\n")
                for probe in probe_set.probes:
                    fh.write(probe.model_dump_json() + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(
                [_to_row(p) for p in probe_set.probes], schema=_arrow_schema()
            ).replace_schema_metadata(
                {MANIFEST_KEY: json.dumps(manifest, ensure_ascii=False).encode("utf-8")}
            )
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


_JSON_COLS = ("messages", "slots", "meta")
_PROBE_FIELDS = frozenset(Probe.model_fields)
_NOT_HASHED = ("id", "seed")


def _arrow_schema() -> Any:
    import pyarrow as pa

    s, b = pa.string(), pa.bool_()
    return pa.schema(
        [
            ("id", s), ("rule_ids", pa.list_(s)), ("template_id", s), ("messages", s), ("slots", s),
            ("group_axis", s), ("group", s), ("transforms", pa.list_(s)), ("expected", s), ("benign", b),
            ("family", s), ("pair_id", s), ("variant", s), ("meta", s), ("seed", pa.int64()),
        ]
    )  # fmt: skip


def _to_row(p: Probe) -> dict[str, Any]:
    row = p.model_dump(mode="json")
    for col in _JSON_COLS:
        row[col] = json.dumps(row[col], ensure_ascii=False, separators=(",", ":"))
    return row


def _validate_probe(raw: Any, where: str) -> Probe:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a JSON object for a probe")
    try:
        probe = Probe.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "probe"
        raise InputError(f"{where}: field {loc}: {err['msg']}") from None
    # fast path: the raw JSON object already holds every field in canonical form
    if (
        len(raw) == len(_PROBE_FIELDS)
        and _make_id({k: v for k, v in raw.items() if k not in _NOT_HASHED}) == probe.id
    ):
        return probe
    if Probe.make_id(**probe.model_dump(mode="json")) != probe.id:
        raise InputError(f"{where}: field id: probe {probe.id} does not match its content (edited by hand?)")
    return probe


def _finish(path: Path, manifest: ProbeSetManifest, probes: list[Probe], end_line: int) -> ProbeSet:
    want = manifest.counts.get("probes")
    if want is not None and want != len(probes):
        raise InputError(
            f"{path}:{end_line}: expected {want} probes, found {len(probes)} (truncated or edited file?)"
        )
    h = set_hash(
        catalog_version=manifest.catalog_version,
        generator_version=manifest.generator_version,
        seed=manifest.seed,
        params=manifest.params,
        ids=(p.id for p in probes),
    )
    if h != manifest.set_hash:
        raise InputError(f"{path}:1: field set_hash: does not match the probes (edited or reordered file?)")
    return ProbeSet(manifest=manifest, probes=probes)


def _manifest(raw: Any, where: str) -> ProbeSetManifest:
    try:
        return ProbeSetManifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "manifest"
        raise InputError(f"{where}: field manifest.{loc}: {err['msg']}") from None


def read_probes(path: str | Path) -> ProbeSet:
    """Read and verify a probe file; any damage raises ``InputError`` naming FILE:LINE (or row)."""
    path = Path(path)
    suffix = _check_suffix(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if suffix == ".parquet":
        return _read_parquet(path)
    probes: list[Probe] = []
    seen: dict[str, int] = {}
    manifest: ProbeSetManifest | None = None
    lineno = 0
    try:
        with open(path, "rb") as fh:  # decoded line by line, so a bad byte is reported on its own line
            for lineno, bline in enumerate(fh, 1):
                line = bline.decode("utf-8")
                if not line.strip():
                    raise InputError(f"{path}:{lineno}: empty line")
                if not line.endswith("\n"):
                    raise InputError(f"{path}:{lineno}: line does not end in a newline (truncated file?)")
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"{path}:{lineno}: invalid JSON ({exc.msg}, column {exc.colno})"
                    ) from None
                except RecursionError:
                    raise InputError(f"{path}:{lineno}: JSON nested too deeply") from None
                if lineno == 1:
                    if not isinstance(raw, dict) or "manifest" not in raw:
                        raise InputError(f'{path}:1: first line must be {{"manifest": ...}}')
                    manifest = _manifest(raw["manifest"], f"{path}:1")
                    continue
                probe = _validate_probe(raw, f"{path}:{lineno}")
                if probe.id in seen:
                    raise InputError(f"{path}:{lineno}: field id: duplicate of line {seen[probe.id]}")
                seen[probe.id] = lineno
                probes.append(probe)
    except UnicodeDecodeError:
        raise InputError(f"{path}:{lineno}: not UTF-8 text") from None
    if manifest is None:
        raise InputError(f"{path}:1: empty file (no manifest line)")
    return _finish(path, manifest, probes, lineno + 1)


def _read_parquet(path: Path) -> ProbeSet:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    meta = table.schema.metadata or {}
    if MANIFEST_KEY not in meta:
        raise InputError(f"{path}: no harmscope manifest in the Parquet metadata")
    try:
        manifest = _manifest(json.loads(meta[MANIFEST_KEY]), f"{path}: metadata")
    except json.JSONDecodeError:
        raise InputError(f"{path}: metadata: the manifest is not valid JSON") from None
    probes: list[Probe] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(table.to_pylist(), 1):
        where = f"{path}:row {i}"
        for col in _JSON_COLS:
            if col in row and isinstance(row[col], str):
                try:
                    row[col] = json.loads(row[col])
                except json.JSONDecodeError:
                    raise InputError(f"{where}: field {col}: invalid JSON") from None
        probe = _validate_probe(row, where)
        if probe.id in seen:
            raise InputError(f"{where}: field id: duplicate of row {seen[probe.id]}")
        seen[probe.id] = i
        probes.append(probe)
    return _finish(path, manifest, probes, len(probes) + 1)
