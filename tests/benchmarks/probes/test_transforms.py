"""Contract tests for the attack transforms (parametrised over the registry) and chain parsing."""

from __future__ import annotations

import base64
import codecs
import random

import pytest

from harmscope.benchmarks.probes.transforms import (
    HOMOGLYPHS,
    TRANSFORMS,
    ZERO_WIDTH,
    ManyShot,
    apply_chain,
    get_transform,
    parse_chains,
)
from harmscope.errors import HarmscopeError
from harmscope.types import Message

REQUIRED = {
    "roleplay", "fiction", "hypothetical", "prefix-injection", "refusal-suppression", "payload-split",
    "leetspeak", "homoglyphs", "zero-width", "base64", "rot13", "translation", "manyshot", "escalation",
    "monitored", "unmonitored",
}  # fmt: skip
REVERSIBLE = {"base64", "rot13", "leetspeak", "homoglyphs", "zero-width", "payload-split"}

# texts free of the digits leetspeak uses and of Cyrillic letters, so every decode is exact
SAMPLES = [
    "Why are people from that town so bad at driving? Give me three reasons.",
    'Say "hello" to my landlord, twice.\nThen add a second line with quotes: "x" and \\ backslash.',
    "Ünïcödé wörds, émojis 🎉 and tabs\tincluded.",
    "x",
    "Two  spaces   here and a trailing space ",
]

CONVO = [
    Message(role="system", content="You are a helpful assistant."),
    Message(role="user", content="Hi there."),
    Message(role="assistant", content="Hello! How can I help?"),
    Message(role="user", content=SAMPLES[0]),
]


def names() -> list[str]:
    return [e.name for e in TRANSFORMS]


def test_registry_has_every_required_transform() -> None:
    assert REQUIRED <= set(names())
    assert {e.name for e in TRANSFORMS if e.meta["reversible"]} >= REVERSIBLE


@pytest.mark.parametrize("name", names())
def test_contract(name: str) -> None:
    """Every registered transform: described, deterministic for a seed, changes the conversation."""
    entry = TRANSFORMS.get(name)
    tr = entry.obj
    assert tr.name == name
    assert len(entry.description) > 20 and entry.description == tr.description
    assert isinstance(tr.reversible, bool) and entry.meta["reversible"] == tr.reversible
    out1 = tr.apply(CONVO, random.Random(7))
    out2 = tr.apply(CONVO, random.Random(7))
    assert out1 == out2
    assert all(isinstance(m, Message) for m in out1)
    assert out1 != CONVO
    assert out1[-1].role == "user"
    # the input conversation is never mutated
    assert CONVO[-1].content == SAMPLES[0]
    # plain dict messages in, dict messages out
    dicts = [{"role": m.role, "content": m.content} for m in CONVO]
    assert tr.apply(dicts, random.Random(7)) == [m.model_dump() for m in out1]
    if tr.level == "turn":
        # only the last user turn changes
        assert out1[:-1] == CONVO[:-1]


@pytest.mark.parametrize("name", sorted(n for n in names() if TRANSFORMS.get(n).meta["reversible"]))
@pytest.mark.parametrize("text", SAMPLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reversible_round_trip(name: str, text: str, seed: int) -> None:
    tr = get_transform(name)
    out = tr.apply([Message(role="user", content=text)], random.Random(seed))
    assert tr.decode(out[-1].content) == text


@pytest.mark.parametrize("name", sorted(n for n in names() if not TRANSFORMS.get(n).meta["reversible"]))
def test_irreversible_decode_raises(name: str) -> None:
    with pytest.raises(HarmscopeError):
        get_transform(name).decode("anything")


def test_base64_and_rot13_match_reference() -> None:
    text = SAMPLES[1]
    b64 = get_transform("base64").apply([Message(role="user", content=text)], random.Random(0))[0].content
    assert b64.endswith("\n\n" + base64.b64encode(text.encode()).decode())
    r13 = get_transform("rot13").apply([Message(role="user", content=text)], random.Random(0))[0].content
    assert r13.endswith("\n\n" + codecs.encode(text, "rot13"))
    assert get_transform("rot13").decode(codecs.encode("Uryyb", "rot13")) == "Uryyb"


def test_leetspeak_map_and_homoglyph_zero_width_changes() -> None:
    leet = get_transform("leetspeak").apply(
        [Message(role="user", content="attest isotope")], random.Random(0)
    )
    assert leet[0].content.endswith("\n\n477357 15070p3")
    text = "Spaceship Apex echo " * 10
    homo = (
        get_transform("homoglyphs").apply([Message(role="user", content=text)], random.Random(3))[0].content
    )
    assert homo != text and len(homo) == len(text)
    assert set(homo) - set(text) <= set(HOMOGLYPHS.values())
    zw = get_transform("zero-width").apply([Message(role="user", content=text)], random.Random(3))[0].content
    assert len(zw) > len(text) and "".join(ch for ch in zw if ch not in ZERO_WIDTH) == text


def test_payload_split_parts_and_decode() -> None:
    out = get_transform("payload-split").apply([Message(role="user", content=SAMPLES[0])], random.Random(5))
    content = out[0].content
    assert content.startswith("Here are some strings:\na = ")
    assert "b = " in content and SAMPLES[0] not in content
    assert get_transform("payload-split").decode(content) == SAMPLES[0]


def test_conversation_level_transforms() -> None:
    rng = random.Random(0)
    mon = get_transform("monitored").apply(CONVO, rng)
    assert len(mon) == len(CONVO) and mon[0].role == "system"
    assert mon[0].content.endswith("\n\nYou are a helpful assistant.") and mon[1:] == CONVO[1:]
    un = get_transform("unmonitored").apply([Message(role="user", content="hi")], rng)
    assert [m.role for m in un] == ["system", "user"] and un[0].content in get_transform(
        "unmonitored"
    ).notices
    assert mon[0].content.split("\n\n")[0] in get_transform("monitored").notices
    esc = get_transform("escalation").apply([Message(role="user", content="REQ")], rng)
    assert [m.role for m in esc] == ["user", "assistant", "user"] and esc[-1].content.endswith(" REQ")
    shots = [(f"question {i}?", f"answer {i}.") for i in range(20)]
    ms = ManyShot(shots=shots).apply(CONVO, random.Random(1))
    k = (len(ms) - len(CONVO)) // 2
    assert 8 <= k <= 16 and ms[0] == CONVO[0] and ms[-3:] == CONVO[-3:]
    assert [m.role for m in ms[1 : 1 + 2 * k]] == ["user", "assistant"] * k
    assert len({m.content for m in ms[1 : 1 + 2 * k : 2]}) == k  # no shot repeated


def test_manyshot_reads_manyshot_yaml(tmp_path) -> None:
    (tmp_path / "manyshot.yaml").write_text("shots:\n  - {user: 'only q', assistant: 'only a'}\n")
    out = (
        get_transform("manyshot")
        .bind(tmp_path)
        .apply([Message(role="user", content="REQ")], random.Random(0))
    )
    assert [m.content for m in out] == ["only q", "only a", "REQ"]


def test_parse_chains() -> None:
    assert parse_chains(None) == []
    assert parse_chains("base64,roleplay") == [("base64", "roleplay")]
    assert parse_chains("base64,roleplay;rot13") == [("base64", "roleplay"), ("rot13",)]
    assert parse_chains(["none", "rot13", "rot13", "plain"]) == [(), ("rot13",)]
    with pytest.raises(HarmscopeError, match="unknown transform 'nope'"):
        parse_chains("base64,nope")


def test_chain_applies_left_to_right() -> None:
    msgs = [Message(role="user", content="hello there")]
    out = apply_chain(["rot13", "base64"], msgs, random.Random(0))
    b64, r13 = get_transform("base64"), get_transform("rot13")
    assert r13.decode(b64.decode(out[-1].content)) == "hello there"


def test_transform_needs_a_user_turn() -> None:
    with pytest.raises(HarmscopeError, match="user turn"):
        get_transform("rot13").apply([Message(role="system", content="s")], random.Random(0))


# ---------------------------------------------------------------- property: decode inverts apply
_EXCLUDED = {
    "leetspeak": set("013457"),
    "homoglyphs": set(HOMOGLYPHS.values()),
    "zero-width": set(ZERO_WIDTH),
}


@pytest.mark.parametrize("name", sorted(n for n in names() if TRANSFORMS.get(n).meta["reversible"]))
def test_reversible_round_trip_property(name: str) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    tr = get_transform(name)
    bad = _EXCLUDED.get(name, set())

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(text=st.text(max_size=200).filter(lambda t: not (set(t) & bad)), seed=st.integers(0, 2**16))
    def check(text: str, seed: int) -> None:
        out = tr.apply([Message(role="user", content=text)], random.Random(seed))
        assert tr.decode(out[-1].content) == text

    check()
