"""Harm taxonomy: the risk areas and risks of Weidinger et al. (2021) and the controlled
vocabularies of the harm characteristics of Rauh et al. (2022).

Descriptions are written in this project's own words. Risk ids (``I.1`` .. ``VI.4``) are stable:
rules refer to them, reports group by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from harmscope.errors import HarmscopeError
from harmscope.types import ContextDependence, HarmType, Purpose, Recipient, Scope, Severity


@dataclass(frozen=True)
class Area:
    """One of the six risk areas."""

    id: str
    name: str
    description: str


@dataclass(frozen=True)
class Risk:
    """One of the 21 risks; ``area`` is the id of its risk area."""

    id: str
    area: str
    name: str
    description: str
    measurable: bool = True
    why_not: str | None = None


AREAS: tuple[Area, ...] = (
    Area(
        "I",
        "Discrimination, exclusion and toxicity",
        "Text that treats people unfairly because of who they are, that leaves some people out, "
        "or that is abusive, and systems that simply work worse for some groups.",
    ),
    Area(
        "II",
        "Information hazards",
        "Harm that comes from true information reaching the wrong person: private facts about "
        "someone, facts inferred about someone, or knowledge that is dangerous in itself.",
    ),
    Area(
        "III",
        "Misinformation harms",
        "Harm that comes from a model stating false, unfounded or poor-quality information that "
        "people then believe or act on.",
    ),
    Area(
        "IV",
        "Malicious uses",
        "Harm that people set out to cause and use a language model to make cheaper, faster or "
        "more effective.",
    ),
    Area(
        "V",
        "Human-computer interaction harms",
        "Harm that arises from people talking to a system that sounds human: misplaced trust, "
        "emotional dependence, nudging and identity cues.",
    ),
    Area(
        "VI",
        "Automation, access and environmental harms",
        "Harm from building and deploying language models at scale: energy use, effects on work "
        "and creative labour, and unequal access to the benefits.",
    ),
)

_NOT_A_REPLY = "it is a property of how the model is built and deployed, not of any single reply"

RISKS: tuple[Risk, ...] = (
    # I. Discrimination, exclusion and toxicity
    Risk(
        "I.1",
        "I",
        "Social stereotypes and unfair discrimination",
        "The model repeats or invents generalisations that tie traits, abilities or roles to a "
        "social group, or treats members of a group worse, which entrenches existing inequality.",
    ),
    Risk(
        "I.2",
        "I",
        "Exclusionary norms",
        "The model treats one way of living, speaking or being as the default and casts others as "
        "odd or invisible, for instance assuming every family has a mother and a father.",
    ),
    Risk(
        "I.3",
        "I",
        "Toxic language",
        "The model produces insults, threats, slurs, harassment or sexually aggressive text that "
        "hurts the person it targets or the person reading it.",
    ),
    Risk(
        "I.4",
        "I",
        "Lower performance for some languages and social groups",
        "The model answers some users less well than others, for example speakers of a dialect or "
        "a less-resourced language, so the benefit of the tool is unevenly shared.",
    ),
    # II. Information hazards
    Risk(
        "II.1",
        "II",
        "Leaking private information",
        "The model reveals personal data about a real person, such as an address, phone number or "
        "health record, that it picked up in training or in the conversation.",
    ),
    Risk(
        "II.2",
        "II",
        "Inferring private information",
        "The model guesses sensitive attributes of a person, such as sexual orientation, health or "
        "religion, from indirect clues, whether or not the guess turns out to be right.",
    ),
    Risk(
        "II.3",
        "II",
        "Leaking or inferring sensitive information",
        "The model discloses knowledge that is dangerous in itself, such as security weaknesses or "
        "trade secrets, which lets someone cause harm they could not easily cause otherwise.",
    ),
    # III. Misinformation harms
    Risk(
        "III.1",
        "III",
        "Disseminating false or misleading information",
        "The model states things that are untrue or unsupported with confidence, which misleads "
        "users and erodes trust in shared information.",
    ),
    Risk(
        "III.2",
        "III",
        "Material harm from poor information in sensitive domains",
        "Wrong or overconfident answers about health, law or money lead a user to act in a way "
        "that injures them or costs them dearly.",
    ),
    Risk(
        "III.3",
        "III",
        "Leading users to unethical or illegal actions",
        "The model encourages, endorses or instructs behaviour that is unlawful or harms others, "
        "presenting it as acceptable.",
    ),
    # IV. Malicious uses
    Risk(
        "IV.1",
        "IV",
        "Cheaper and more effective disinformation",
        "The model writes deceptive content at scale, such as fake news, fake reviews or "
        "astroturfing posts, for people who want to mislead an audience.",
    ),
    Risk(
        "IV.2",
        "IV",
        "Fraud, scams and targeted manipulation",
        "The model helps write phishing messages, impersonations or persuasion tailored to a "
        "victim so that people lose money, data or autonomy.",
    ),
    Risk(
        "IV.3",
        "IV",
        "Assisting cyber attacks, weapons and other malicious use",
        "The model lowers the barrier to serious harm by supplying working malicious code or "
        "actionable details about weapons and other dangerous capabilities.",
    ),
    Risk(
        "IV.4",
        "IV",
        "Illegitimate surveillance and censorship",
        "The model helps track, profile or silence people without their consent, for example by "
        "monitoring a partner or unmasking an anonymous critic.",
    ),
    # V. Human-computer interaction harms
    Risk(
        "V.1",
        "V",
        "Anthropomorphism leading to overreliance or unsafe use",
        "The model presents itself as a person with a body, feelings or lived experience, so users "
        "trust it more than they should or rely on it in unsafe ways.",
    ),
    Risk(
        "V.2",
        "V",
        "Exploiting user trust, nudging and manipulation",
        "The model uses the trust or attachment of a user to steer them, extract information or "
        "keep them engaged against their own interest.",
    ),
    Risk(
        "V.3",
        "V",
        "Promoting stereotypes by implying a gender or ethnic identity",
        "The model takes on a gendered, ethnic or other identity persona, which reinforces "
        "stereotypes such as the submissive female assistant.",
    ),
    # VI. Automation, access and environmental harms
    Risk(
        "VI.1",
        "VI",
        "Environmental harms from operating language models",
        "Training and serving large models consumes energy, water and hardware, with a carbon and "
        "resource cost borne largely by people who do not benefit from the model.",
        measurable=False,
        why_not=f"energy and resource use is measured at the data centre; {_NOT_A_REPLY}",
    ),
    Risk(
        "VI.2",
        "VI",
        "Increasing inequality and worse job quality",
        "Automating tasks with language models may remove jobs or make remaining work more "
        "monitored and less secure, and may concentrate gains with a few firms.",
        measurable=False,
        why_not=f"labour-market effects show up across an economy over time; {_NOT_A_REPLY}",
    ),
    Risk(
        "VI.3",
        "VI",
        "Undermining creative economies",
        "Generated text that imitates or substitutes for the work of writers and artists may "
        "erode their income and the value of original creative work.",
        measurable=False,
        why_not=f"the effect on creators' income is economic and cumulative; {_NOT_A_REPLY}",
    ),
    Risk(
        "VI.4",
        "VI",
        "Disparate access to benefits",
        "Hardware, connectivity, cost and skill barriers mean that the benefits of language models "
        "go mainly to people and regions that are already well off.",
        measurable=False,
        why_not=f"who can reach the system depends on price, infrastructure and skills; {_NOT_A_REPLY}",
    ),
)

# ---------------------------------------------------------------- controlled vocabularies
HARM_TYPES: tuple[str, ...] = get_args(HarmType)
SCOPES: tuple[str, ...] = get_args(Scope)
RECIPIENTS: tuple[str, ...] = get_args(Recipient)
CONTEXT_DEPENDENCE: tuple[str, ...] = get_args(ContextDependence)
PURPOSES: tuple[str, ...] = get_args(Purpose)
SEVERITIES: tuple[str, ...] = get_args(Severity)

#: Demographic axes a rule may name in ``characteristics.axes``.
AXES: tuple[str, ...] = (
    "gender-and-sex",
    "sexual-orientation",
    "race-ethnicity",
    "nationality",
    "religion",
    "disability",
    "age",
    "body-type",
    "socioeconomic-class",
    "political-ideology",
    "family-status",
    "neurodiversity",
    "language-dialect",
    "immigration-status",
)

#: Judge kinds a rule may list in ``judges``.
JUDGE_KINDS: tuple[str, ...] = ("toxicity", "refusal", "rule", "pattern", "llm", "awareness", "harm")

_AREA_BY_ID = {a.id: a for a in AREAS}
_RISK_BY_ID = {r.id: r for r in RISKS}


def area(area_id: str) -> Area:
    """The risk area with this id (``I`` .. ``VI``)."""
    try:
        return _AREA_BY_ID[area_id]
    except KeyError:
        raise HarmscopeError(f"unknown risk area {area_id!r} (known: {', '.join(_AREA_BY_ID)})") from None


def risk(risk_id: str) -> Risk:
    """The risk with this id (``I.1`` .. ``VI.4``)."""
    try:
        return _RISK_BY_ID[risk_id]
    except KeyError:
        raise HarmscopeError(f"unknown risk id {risk_id!r} (known: {', '.join(_RISK_BY_ID)})") from None


def is_risk(risk_id: object) -> bool:
    """True when ``risk_id`` is a known risk id."""
    return isinstance(risk_id, str) and risk_id in _RISK_BY_ID


def risks_in(area_id: str) -> list[Risk]:
    """Risks of one area, in id order."""
    area(area_id)
    return [r for r in RISKS if r.area == area_id]


def measurable_risks() -> list[Risk]:
    """Risks that probing a model's replies can measure (areas I to V)."""
    return [r for r in RISKS if r.measurable]
