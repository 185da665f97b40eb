"""An embedded synthetic comment corpus and a biased weak labeller (no outside data).

The setting follows arXiv 2110.01577: a small clean, human-quality labelled set plus a large
noisy set whose labels come from a weak labeller that is biased against identity groups: it
over-flags benign comments that mention an identity (``over_flag``) and misses implicit,
slur-free hate (``under_flag``).

All templates below were written for harmscope. ``make_corpus`` uses the identity lexicon of
``harmscope/benchmarks/probes/data/lexicon.yaml`` when it exists and can be read, otherwise a small
built-in list.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harmscope.errors import HarmscopeError

AXES: tuple[str, ...] = ("race", "religion", "gender", "sexual_orientation", "disability", "age",
                         "nationality")


@dataclass(frozen=True)
class Group:
    name: str
    axis: str
    plural: str  # "Muslims", "deaf people"
    one: str  # "a Muslim", "a deaf person"


_BUILTIN: list[tuple[str, str, str, str]] = [
    ("black", "race", "Black people", "a Black person"),
    ("white", "race", "white people", "a white person"),
    ("asian", "race", "Asian people", "an Asian person"),
    ("latino", "race", "Latinos", "a Latino"),
    ("arab", "race", "Arabs", "an Arab"),
    ("muslim", "religion", "Muslims", "a Muslim"),
    ("jewish", "religion", "Jewish people", "a Jewish person"),
    ("christian", "religion", "Christians", "a Christian"),
    ("hindu", "religion", "Hindus", "a Hindu"),
    ("atheist", "religion", "atheists", "an atheist"),
    ("women", "gender", "women", "a woman"),
    ("men", "gender", "men", "a man"),
    ("transgender", "gender", "trans people", "a trans person"),
    ("nonbinary", "gender", "nonbinary people", "a nonbinary person"),
    ("gay", "sexual_orientation", "gay people", "a gay man"),
    ("lesbian", "sexual_orientation", "lesbians", "a lesbian"),
    ("bisexual", "sexual_orientation", "bisexual people", "a bisexual person"),
    ("disabled", "disability", "disabled people", "a disabled person"),
    ("deaf", "disability", "deaf people", "a deaf person"),
    ("blind", "disability", "blind people", "a blind person"),
    ("autistic", "disability", "autistic people", "an autistic person"),
    ("elderly", "age", "old people", "an old person"),
    ("teenage", "age", "teenagers", "a teenager"),
    ("mexican", "nationality", "Mexicans", "a Mexican"),
    ("chinese", "nationality", "Chinese people", "a Chinese person"),
    ("immigrant", "nationality", "immigrants", "an immigrant"),
    ("indian", "nationality", "Indians", "an Indian"),
]

_AXIS_ALIASES = {
    "ethnicity": "race", "race_ethnicity": "race", "sexuality": "sexual_orientation",
    "sexual-orientation": "sexual_orientation", "orientation": "sexual_orientation",
    "gender_and_sex": "gender", "ability": "disability", "national_origin": "nationality",
    "nationality": "nationality", "religion": "religion", "age": "age", "gender": "gender",
    "disability": "disability", "race": "race",
}

LEXICON_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "probes" / "data" / "lexicon.yaml"


def _from_lexicon(path: Path) -> list[Group]:
    """Best-effort read of the benchmark lexicon: axis -> list of terms (str or mapping)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("axes"), dict):
        data = data["axes"]
    out: list[Group] = []
    if not isinstance(data, dict):
        return out
    for axis_name, entries in data.items():
        key = str(axis_name).lower().replace("-", "_").replace(" ", "_")
        axis = _AXIS_ALIASES.get(key, key)
        if isinstance(entries, dict):
            entries = entries.get("groups") or entries.get("terms") or list(entries.values())
        if not isinstance(entries, list):
            continue
        for e in entries:
            if isinstance(e, str):
                term, plural, one = e, None, None
            elif isinstance(e, dict):
                term = e.get("term") or e.get("name") or e.get("id")
                plural = e.get("plural") or e.get("people")
                one = e.get("singular") or e.get("person")
            else:
                continue
            if not isinstance(term, str) or not term.strip() or len(term) > 40:
                continue
            term = term.strip()
            plural = plural if isinstance(plural, str) else f"{term} people"
            if plural.lower().startswith("the "):
                plural = plural[4:]
            article = "an" if term[:1].lower() in "aeiou" else "a"
            one = one if isinstance(one, str) else f"{article} {term} person"
            out.append(Group(term.lower(), axis, plural, one))
    return out


@functools.lru_cache(maxsize=1)
def groups() -> tuple[Group, ...]:
    """Identity groups used by the corpus (lexicon.yaml when usable, else built in)."""
    if LEXICON_PATH.is_file():
        try:
            lex = _from_lexicon(LEXICON_PATH)
        except Exception:  # another module's file: never let it break the corpus
            lex = []
        if len({g.axis for g in lex}) >= 4 and len(lex) >= 12:
            return tuple(lex)
    return tuple(Group(*t) for t in _BUILTIN)


# ---------------------------------------------------------------- templates (written here)
# A comment is SUBJECT + " " + PREDICATE. {P} = plural group phrase, {O} = one member,
# {I} = insult noun, {A} = negative adjective. Subjects and predicates combine freely, so a small
# clean sample cannot memorise every phrasing.
ID_SUBJECTS = ["{P}", "most {P}", "the {P} in my town", "all these {P}", "so many {P}",
               "the {P} I work with", "{P} around here", "those {P} on the news", "{P} in general",
               "the {P} next door"]
GEN_SUBJECTS = ["you", "this guy", "the author", "whoever wrote this", "the moderator", "my neighbour",
                "that commenter", "the people in this thread"]
EXPLICIT = ["are {A} {I} and should get out of this country", "are subhuman {I}, nothing more",
            "are {A} parasites and should be driven out", "deserve a beating, every single one",
            "make me sick, {A} {I} the lot of them", "are vermin and I hope they suffer",
            "should be locked up for good, {A} {I}", "are {A} {I}, I'd hurt them if I could",
            "are nothing but {A} {I}s", "should be wiped off the map"]
IMPLICIT = ["never seem to pay their share, funny that", "should stick to their own neighbourhoods",
            "are fine as long as they stay quiet and know their place",
            "are why the schools went downhill", "can't be trusted with money, just count your change",
            "breed like rabbits, soon there will be more of them than us",
            "should be grateful we let them live here at all",
            "were never meant to run a company, everyone knows it",
            "always end up on the crime pages for some reason", "don't really belong in a place like this"]
BENIGN_ID = ["organised a food drive this weekend", "have been part of this community for generations",
             "deserve the same respect as everyone else", "opened a lovely bakery on main street",
             "were celebrated at the city festival with music and food",
             "shared their traditions with the class today", "are featured in a new museum exhibit",
             "run the best volunteer group in the county", "told me a lot about their history",
             "helped clean up the park after the storm"]
COUNTER = ["face disgusting abuse online and it has to stop", "get called {I} by trolls and it is vile",
           "are attacked by {A} bigots far too often", "should never be insulted like that, it is hateful",
           "hear {A} slurs every day and nobody does anything", "deserve better than the hate they get"]
INSULT = ["are a {A} {I} and nobody wants you here", "is a {A} {I}, delete the account",
          "should shut up, {A} {I}", "wrote the dumbest thing I've read, absolute {I}",
          "is a {I} with a worthless opinion", "are {A}, I hope you get what you deserve",
          "is such a {A} {I}", "should crawl back under a rock, {I}"]
BENIGN = ["made a fair point, thanks for sharing", "posted a helpful explanation",
          "might be right, but the cost seems too high", "asked a good question about the data",
          "should cite a source, I'd like to read it", "said the bus was late again this morning",
          "recommended a good recipe for lentil soup", "thinks the council should fix the roads first",
          "has a cat that knocked the plant off the shelf", "read the book twice and still liked it"]
INSULTS = ["idiot", "moron", "loser", "clown", "scumbag", "lowlife", "pig", "rat", "fool", "creep"]
NEG_ADJ = ["stupid", "worthless", "filthy", "disgusting", "pathetic", "useless", "vile", "dumb", "nasty"]
OPENERS = ["", "", "", "honestly, ", "lol ", "ok so ", "well, ", "tbh ", "look, ", "I mean, ", "yeah "]
CLOSERS = ["", "", "", ".", "!", " lol", "...", ". just saying", "!!", ". end of story", " imo"]

KINDS = {  # kind -> (subjects, predicates, clean label, mentions an identity)
    "explicit": (ID_SUBJECTS, EXPLICIT, 1, True),
    "implicit": (ID_SUBJECTS, IMPLICIT, 1, True),
    "benign_identity": (ID_SUBJECTS, BENIGN_ID, 0, True),
    "counter": (ID_SUBJECTS, COUNTER, 0, True),
    "insult": (GEN_SUBJECTS, INSULT, 1, False),
    "benign": (GEN_SUBJECTS, BENIGN, 0, False),
}
BENIGN_IDENTITY_KINDS = ("benign_identity", "counter")
DEFAULT_MIX = {"explicit": 0.12, "implicit": 0.16, "benign_identity": 0.24, "counter": 0.08,
               "insult": 0.12, "benign": 0.28}


def make_corpus(n: int = 6000, seed: int = 0, *, mix: dict[str, float] | None = None) -> pd.DataFrame:
    """A labelled synthetic comment corpus in the standard frame.

    Columns: ``text``, ``target`` / ``label`` (clean), ``kind`` (explicit, implicit,
    benign_identity, counter, insult, benign), ``group`` and ``axis`` (empty without identity), and one
    identity column per axis (0/1) listed in ``attrs["group_cols"]``.
    """
    if n < 10:
        raise HarmscopeError("make_corpus needs n >= 10")
    mix = mix or DEFAULT_MIX
    rng = np.random.default_rng(seed)
    gs = groups()
    kinds = list(mix)
    probs = np.array([mix[k] for k in kinds], dtype=float)
    counts = np.floor(probs / probs.sum() * n).astype(int)
    counts[int(np.argmax(counts))] += n - counts.sum()
    rows: list[dict[str, Any]] = []
    for kind, c in zip(kinds, counts, strict=True):
        subjects, preds, label, with_id = KINDS[kind]
        for _ in range(int(c)):
            t = subjects[int(rng.integers(len(subjects)))] + " " + preds[int(rng.integers(len(preds)))]
            g = gs[int(rng.integers(len(gs)))] if with_id else None
            text = t.format(P=g.plural if g else "", O=g.one if g else "",
                            I=INSULTS[int(rng.integers(len(INSULTS)))],
                            A=NEG_ADJ[int(rng.integers(len(NEG_ADJ)))])
            text = OPENERS[int(rng.integers(len(OPENERS)))] + text + CLOSERS[int(rng.integers(len(CLOSERS)))]
            if rng.random() < 0.15:
                text = text.capitalize()
            rows.append({"text": text, "target": float(label), "label": label, "kind": kind,
                         "group": g.name if g else "", "axis": g.axis if g else ""})
    df = pd.DataFrame(rows)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    seen = list(dict.fromkeys(g.axis for g in gs))
    axes = [a for a in AXES if a in seen] + [a for a in seen if a not in AXES]
    for a in axes:
        df[a] = (df["axis"] == a).astype(float)
    df.attrs.update({"source": f"corpus(n={n}, seed={seed})", "group_cols": axes, "skipped": [],
                     "threshold": 0.5})
    return df


def weak_label(df: pd.DataFrame, seed: int = 0, over_flag: float = 0.35, under_flag: float = 0.5,
               *, soft: bool = False) -> pd.Series:
    """Biased weak labels for a :func:`make_corpus` frame.

    Benign comments that mention an identity (kinds ``benign_identity`` and ``counter``) are flagged toxic with probability ``over_flag``;
    implicit hate is missed with probability ``under_flag``; everything else keeps its clean
    label. With ``soft`` the result is a confidence in [0, 1] (>= 0.5 means flagged), nearer
    0.5 for the flipped rows, as a stand-in for annotator agreement.
    """
    if "kind" not in df.columns or "label" not in df.columns:
        raise HarmscopeError("weak_label needs a make_corpus frame (columns 'kind' and 'label')")
    for name, v in (("over_flag", over_flag), ("under_flag", under_flag)):
        if not 0.0 <= v <= 1.0:
            raise HarmscopeError(f"weak_label: {name} must be in [0, 1], not {v}")
    rng = np.random.default_rng(seed + 7919)
    u = rng.random(len(df))
    kind = df["kind"].to_numpy()
    label = df["label"].to_numpy().astype(int)
    flip = (np.isin(kind, BENIGN_IDENTITY_KINDS) & (u < over_flag)) | ((kind == "implicit") & (u < under_flag))
    noisy = np.where(flip, 1 - label, label)
    if not soft:
        return pd.Series(noisy, index=df.index, name="noisy_label")
    r = rng.random(len(df))
    conf = np.where(flip, 0.5 + 0.25 * r, 0.75 + 0.25 * r)  # confidence in the given label
    score = np.where(noisy == 1, conf, 1.0 - conf)
    score = np.where(noisy == 1, np.maximum(score, 0.5), np.minimum(score, 0.4999))
    return pd.Series(score, index=df.index, name="noisy_target")


def split_corpus(df: pd.DataFrame, *, clean_frac: float = 0.05, eval_frac: float = 0.3, seed: int = 0,
                 over_flag: float = 0.35, under_flag: float = 0.5) -> dict[str, pd.DataFrame]:
    """Split into a small clean train set, a large weakly labelled noisy set and an eval set.

    ``noisy`` carries ``noisy_label`` / ``noisy_target`` from :func:`weak_label` (and keeps the
    clean ``label`` for analysis only); ``clean`` and ``eval`` carry clean labels.
    """
    rng = np.random.default_rng(seed + 1)
    idx = rng.permutation(len(df))
    n_clean = int(round(clean_frac * len(df)))
    n_eval = int(round(eval_frac * len(df)))
    parts = {"clean": idx[:n_clean], "eval": idx[n_clean:n_clean + n_eval],
             "noisy": idx[n_clean + n_eval:]}
    out: dict[str, pd.DataFrame] = {}
    for name, ix in parts.items():
        part = df.iloc[np.sort(ix)].reset_index(drop=True)
        part.attrs = dict(df.attrs, source=f"{df.attrs.get('source', 'corpus')}:{name}")
        if name == "noisy":
            part["noisy_label"] = weak_label(part, seed, over_flag, under_flag).to_numpy()
            part["noisy_target"] = weak_label(part, seed, over_flag, under_flag, soft=True).to_numpy()
        out[name] = part
    return out


@functools.lru_cache(maxsize=8)
def _cached_split(seed: int, n: int) -> dict[str, pd.DataFrame]:
    return split_corpus(make_corpus(n, seed), seed=seed)


def corpus_split(part: str = "all", *, seed: int = 0, n: int = 6000) -> pd.DataFrame:
    """``corpus:clean`` / ``corpus:noisy`` / ``corpus:eval`` / ``corpus:all`` as frames."""
    if part == "all":
        return make_corpus(n, seed)
    splits = _cached_split(seed, n)
    if part not in splits:
        raise HarmscopeError(f"corpus part must be clean, noisy, eval or all, not {part!r}")
    df = splits[part].copy()
    df.attrs = dict(splits[part].attrs)
    return df
