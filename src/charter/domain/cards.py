"""Model cards: the reviewed, versioned documentation of a central model package group.

Modelled on Amazon SageMaker Model Cards. One card exists per central model package group and is
named ``crn:charter:<account>:cards:model-card/<group>``. Its content has these sections:

* **overview**: owner, description, problem type, algorithm, risk rating and its explanation;
* **intended uses**: purpose, intended users, out-of-scope uses;
* **business details**: business problem, stakeholders, line of business;
* **training details** and **evaluation**: filled automatically from the lineage and metrics of
  the model package a version documents (:func:`from_package`), never written by hand;
* **ethical considerations** and **caveats and recommendations**.

Every edit makes a new, immutable version (1, 2, 3 ...) recording its author, time, change
summary, content and the package it documents. The card moves through a status machine
(:data:`TRANSITIONS`); every status change is recorded with its actor, comment, time and version::

    Draft --submit--> PendingReview --approve--> Approved --archive--> Archived
      ^                   |                         |
      +------reject-------+                         |
      +------edit (a new draft version)-------------+

Decisions worth knowing:

* **What is under review cannot change.** A card pending review refuses edits; a reviewer rejects
  it back to Draft first. So the version approved is exactly the version submitted.
* **Editing an approved card starts a new Draft version**; the approved version stays approved,
  readable and named by ``approved_version`` until a later version is approved in its place.
* **Only an approved card is archived**, so that an archive always holds a reviewed record;
  an archived card refuses every change.
* **Separation of duties**: nobody who wrote any version under review (every version since the
  last approved one) may approve it; that includes, but is stricter than, the last author.
* **A rejection needs a comment**; an approver may pass the version they read, and the approval is
  refused (Conflict) if the card has moved on since.
* **An edit that changes nothing is refused**, so every version differs from the one before.
  Editing a Draft records no status change; editing an Approved card records Approved -> Draft.
* **Documents** (:func:`card_content_from_document`, :func:`to_document`) use the camelCase names
  of Charter's other files (``riskRating``, ``outOfScopeUses``). A document is the card's whole
  editable content: sections and fields left out are empty, not kept from the last version.
* **User text is text, not markup**, in both renderings: HTML escapes it and Markdown
  backslash-escapes everything that Markdown would otherwise interpret (emphasis, links, raw HTML,
  table pipes, list and heading markers), so the card reads the same in both forms.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal, TypeGuard

from charter.domain.crn import CRN
from charter.domain.names import check_name
from charter.domain.plan import Problem
from charter.domain.registry import ModelFormat, ModelPackage
from charter.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError

MAX_LINE: Final = 200
"""Longest single-line field (owner, problem type, algorithm, list items ...), in characters."""

MAX_TEXT: Final = 10_000
"""Longest free-text field (description, purpose, ethical considerations ...), in characters."""

MAX_ITEMS: Final = 50
"""Most items in a list field (intended users, out-of-scope uses, stakeholders)."""

ROOT: Final = "(document)"
"""The field name under which problems of the document as a whole are reported."""

SEPARATION_OF_DUTIES: Final = "card-approver-is-not-author"
"""The policy named in ``PermissionDenied.details['policy']`` when an author tries to approve."""


class CardStatus(StrEnum):
    DRAFT = "Draft"
    PENDING_REVIEW = "PendingReview"
    APPROVED = "Approved"
    ARCHIVED = "Archived"


class RiskRating(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    UNKNOWN = "unknown"


TRANSITIONS: Final[Mapping[tuple[CardStatus, str], CardStatus]] = MappingProxyType({
    (CardStatus.DRAFT, "edit"): CardStatus.DRAFT,
    (CardStatus.DRAFT, "submit"): CardStatus.PENDING_REVIEW,
    (CardStatus.PENDING_REVIEW, "approve"): CardStatus.APPROVED,
    (CardStatus.PENDING_REVIEW, "reject"): CardStatus.DRAFT,
    (CardStatus.APPROVED, "edit"): CardStatus.DRAFT,
    (CardStatus.APPROVED, "archive"): CardStatus.ARCHIVED,
})
"""(status, action) -> the status the action leads to; every pair not listed is refused."""


# --------------------------------------------------------------------------------------------
# Content: the sections people write
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overview:
    owner: str = ""
    description: str = ""
    problem_type: str = ""
    algorithm: str = ""
    risk_rating: RiskRating = RiskRating.UNKNOWN
    risk_explanation: str = ""

    def __post_init__(self) -> None:
        _raise_if(_section_problems("overview", self))


@dataclass(frozen=True, slots=True)
class IntendedUses:
    purpose: str = ""
    users: tuple[str, ...] = ()
    out_of_scope: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _raise_if(_section_problems("intendedUses", self))


@dataclass(frozen=True, slots=True)
class BusinessDetails:
    business_problem: str = ""
    stakeholders: tuple[str, ...] = ()
    line_of_business: str = ""

    def __post_init__(self) -> None:
        _raise_if(_section_problems("businessDetails", self))


@dataclass(frozen=True, slots=True)
class CardContent:
    """The sections of a card that people write; the automatic ones live beside it in a version."""

    overview: Overview = field(default_factory=Overview)
    intended_uses: IntendedUses = field(default_factory=IntendedUses)
    business_details: BusinessDetails = field(default_factory=BusinessDetails)
    ethical_considerations: str = ""
    caveats_and_recommendations: str = ""

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        for key, attr in _PROSE.items():
            problems += _check_value("text", getattr(self, attr), key)
        _raise_if(problems)


# --------------------------------------------------------------------------------------------
# The automatic sections: filled from a model package
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingDetails:
    """How the documented package was produced, copied from its lineage."""

    registered_by: str
    registered_at: datetime
    format: ModelFormat
    run: str | None = None
    run_started_by: str | None = None
    datasets: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    product_version: str | None = None
    origin: str | None = None
    """The CRN of the package this one was promoted from, if any."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The documented package's metrics, bound to that package and the digests of its artifacts."""

    package: CRN
    metrics: tuple[tuple[str, float], ...] = ()
    digests: tuple[str, ...] = ()


def from_package(package: ModelPackage) -> tuple[TrainingDetails, Evaluation]:
    """The automatic sections of a card version documenting ``package``."""
    lineage = package.lineage
    training = TrainingDetails(
        registered_by=lineage.registered_by,
        registered_at=package.created_at,
        format=package.format,
        run=lineage.run,
        run_started_by=lineage.run_started_by,
        datasets=tuple(lineage.datasets),
        parameters=tuple(lineage.parameters),
        product_version=lineage.product_version,
        origin=package.origin,
    )
    return training, Evaluation(package.crn, tuple(package.metrics), package.digests)


# --------------------------------------------------------------------------------------------
# Versions and the card
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardVersion:
    """One immutable version: who wrote it, when, why, what it says and which package it documents."""

    number: int
    author: str
    time: datetime
    summary: str
    content: CardContent
    training: TrainingDetails | None = None
    evaluation: Evaluation | None = None

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValidationError("card versions start at 1", field="version")
        if (self.training is None) != (self.evaluation is None):
            raise ValidationError("training details and evaluation come together from one package",
                                  field="evaluation")

    @property
    def package(self) -> CRN | None:
        """The model package this version documents, if any yet."""
        return self.evaluation.package if self.evaluation is not None else None


@dataclass(frozen=True, slots=True)
class CardStatusChange:
    """A move of the card's status: who made it, why, when, and the version it concerns."""

    status: CardStatus
    previous: CardStatus
    actor: str
    comment: str
    time: datetime
    version: int


@dataclass(frozen=True, slots=True)
class ModelCard:
    """A model card: its versions, its status and the history of its status changes.

    ``status`` is the status of the latest version. ``approved_version`` names the version most
    recently approved; it stays approved (and readable) while a newer draft is written.

    ``versions`` holds every version, or, in a card read to document one more package
    (``CardRepository.get_latest``), only the latest one: a change then costs the same however
    many versions the card has. ``first`` is the number of the first version held.
    """

    account: str
    group: str
    versions: tuple[CardVersion, ...]
    status: CardStatus = CardStatus.DRAFT
    approved_version: int | None = None
    history: tuple[CardStatusChange, ...] = ()
    first: int = 1

    def __post_init__(self) -> None:
        check_name(self.account, "account")
        check_name(self.group, "model package group")
        if not self.versions:
            raise ValidationError("a card has at least one version", card=str(self.crn))
        if self.first < 1 or [v.number for v in self.versions] != list(
                range(self.first, self.first + len(self.versions))):
            raise ValidationError("a card's versions are numbered 1, 2, 3 ... without gaps",
                                  card=str(self.crn))
        if self.approved_version is not None and not 1 <= self.approved_version <= self.count:
            raise ValidationError(f"{self.crn} has no version {self.approved_version} to be approved",
                                  card=str(self.crn))
        if (self.status in (CardStatus.APPROVED, CardStatus.ARCHIVED)
                and self.approved_version != self.count):
            raise ValidationError(f"an {self.status} card's latest version is its approved one",
                                  card=str(self.crn))

    @classmethod
    def create(cls, account: str, group: str, author: str, time: datetime,
               content: CardContent | None = None, package: ModelPackage | None = None,
               summary: str = "Created the card") -> ModelCard:
        """A new card: version 1, in Draft."""
        _check_actor(author, "author")
        _check_comment(summary, "summary", required=True)
        training, evaluation = from_package(package) if package is not None else (None, None)
        first = CardVersion(1, author, time, summary, content if content is not None else CardContent(),
                            training, evaluation)
        card = cls(account, group, (first,))
        if package is not None:
            card._check_package(package)
        return card

    # ---- reading ------------------------------------------------------------------------

    @property
    def crn(self) -> CRN:
        return CRN(self.account, "cards", "model-card", self.group)

    def version_crn(self, number: int) -> CRN:
        return CRN(self.account, "cards", "model-card", self.group, str(self.version(number).number))

    @property
    def latest(self) -> CardVersion:
        return self.versions[-1]

    @property
    def count(self) -> int:
        """How many versions the card has (the latest one's number)."""
        return self.versions[-1].number

    @property
    def approved(self) -> CardVersion | None:
        """The version most recently approved, even while a newer draft is being written."""
        return self.version(self.approved_version) if self.approved_version is not None else None

    @property
    def authors_under_review(self) -> frozenset[str]:
        """Who wrote a version under review: every version since the last approved one."""
        return frozenset(v.author for v in self._since(self.approved_version or 0))

    @property
    def approval(self) -> CardStatusChange | None:
        """The approval in force: the decision that approved ``approved_version``."""
        for change in reversed(self.history):
            if change.status is CardStatus.APPROVED and change.version == self.approved_version:
                return change
        return None

    def version(self, number: int) -> CardVersion:
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= self.count:
            raise NotFound(f"{self.crn} has no version {number!r}", card=str(self.crn),
                           version=str(number))
        return self.versions[self._held(number)]

    def every_version(self) -> tuple[CardVersion, ...]:
        """All the versions, from 1 (LookupError on a card read with its latest version only)."""
        return self._since(0)

    def _since(self, number: int) -> tuple[CardVersion, ...]:
        """The versions after ``number``."""
        return self.versions[self._held(number + 1):] if number < self.count else ()

    def _held(self, number: int) -> int:
        """Where version ``number`` is in ``versions``; LookupError if this card was read without it
        (with its latest version only)."""
        if number < self.first:
            raise LookupError(f"{self.crn} was read with versions {self.first} to {self.count} only, "
                              f"not version {number}")
        return number - self.first

    def status_of(self, number: int) -> CardStatus | None:
        """A version's own status: the card's for the latest, Approved for the approved version
        while a newer one is drafted, and None for a superseded version."""
        self.version(number)
        if number == self.count:
            return self.status
        return CardStatus.APPROVED if number == self.approved_version else None

    # ---- changing -----------------------------------------------------------------------

    def edit(self, author: str, time: datetime, summary: str, *, content: CardContent | None = None,
             package: ModelPackage | None = None) -> ModelCard:
        """A new version with new content, or documenting another package, or both.

        What is not given is carried over from the latest version. A Draft card stays Draft; an
        Approved card starts a new Draft version and keeps its approved version.
        """
        if self.status is CardStatus.PENDING_REVIEW:
            raise InvalidTransition(f"{self.crn} is pending review; it is approved or rejected "
                                    "before it changes", card=str(self.crn), status=str(self.status),
                                    action="edit")
        if self.status is CardStatus.ARCHIVED:
            raise InvalidTransition(f"{self.crn} is archived and cannot change", card=str(self.crn),
                                    status=str(self.status), action="edit")
        _check_actor(author, "author")
        _check_comment(summary, "summary", required=True)
        latest = self.latest
        training, evaluation = latest.training, latest.evaluation
        if package is not None:
            self._check_package(package)
            training, evaluation = from_package(package)
        version = CardVersion(self.count + 1, author, time, summary,
                              content if content is not None else latest.content, training, evaluation)
        if (version.content, version.training, version.evaluation) == (
                latest.content, latest.training, latest.evaluation):
            raise ValidationError(f"the edit of {self.crn} changes nothing", card=str(self.crn),
                                  field="content")
        versions = (*self.versions, version)
        if self.status is CardStatus.DRAFT:
            return replace(self, versions=versions)
        return self._move("edit", author, summary, time, versions=versions)

    def submit(self, actor: str, time: datetime, comment: str = "") -> ModelCard:
        """Send the latest version for review."""
        return self._move("submit", actor, comment, time)

    def approve(self, actor: str, time: datetime, comment: str = "", *,
                version: int | None = None) -> ModelCard:
        """Approve the version under review; ``version``, if given, is the one the approver read.

        Refused (PermissionDenied) to anyone who wrote a version under review: every version since
        the last approved one.
        """
        if self.status is CardStatus.PENDING_REVIEW:
            if version is not None and version != self.count:
                raise Conflict(f"{self.crn} is reviewing version {self.count}, not {version}",
                               card=str(self.crn), version=self.count, requested=version)
            if actor in self.authors_under_review:
                raise PermissionDenied(
                    f"{actor} wrote a version under review of {self.crn} and cannot approve it",
                    policy=SEPARATION_OF_DUTIES, card=str(self.crn), version=self.count,
                    actor=actor)
        return self._move("approve", actor, comment, time, approved_version=self.count)

    def reject(self, actor: str, time: datetime, comment: str) -> ModelCard:
        """Send the version under review back to Draft, saying why."""
        if self.status is CardStatus.PENDING_REVIEW:
            _check_comment(comment, "comment", required=True)
        return self._move("reject", actor, comment, time)

    def archive(self, actor: str, time: datetime, comment: str = "") -> ModelCard:
        """Retire an approved card for good: an archived card refuses every change."""
        return self._move("archive", actor, comment, time)

    def _move(self, action: str, actor: str, comment: str, time: datetime, *,
              versions: tuple[CardVersion, ...] | None = None,
              approved_version: int | None = None) -> ModelCard:
        """The card with its status changed (and, in the same step, new versions or a new approved
        version, so that no intermediate card breaks the invariants)."""
        status = TRANSITIONS.get((self.status, action))
        if status is None:
            raise InvalidTransition(f"cannot {action} {self.crn}: it is {self.status}",
                                    card=str(self.crn), status=str(self.status), action=action)
        _check_actor(actor, "actor")
        _check_comment(comment, "comment")
        versions = versions or self.versions
        change = CardStatusChange(status, self.status, actor, comment, time, versions[-1].number)
        return replace(self, status=status, versions=versions, history=(*self.history, change),
                       approved_version=approved_version or self.approved_version)

    def _check_package(self, package: ModelPackage) -> None:
        if (package.account, package.group) != (self.account, self.group):
            raise ValidationError(f"{self.crn} documents packages of its own group, not {package.crn}",
                                  field="package", card=str(self.crn), package=str(package.crn))


def _check_actor(actor: object, what: str) -> None:
    problems = _check_string(actor, what, multiline=False, required=True)
    if problems:
        raise ValidationError(f"invalid {what}: {problems[0].reason}", field=what)


def _check_comment(text: object, what: str, required: bool = False) -> None:
    problems = _check_value("text", text, what)
    if not problems and required and isinstance(text, str) and not text.strip():
        problems = [Problem(what, "must not be blank")]
    if problems:
        raise ValidationError(f"invalid {what}: {problems[0].reason}", field=what)


# --------------------------------------------------------------------------------------------
# Documents: reading and writing the editable sections as YAML/JSON objects
# --------------------------------------------------------------------------------------------

_Kind = Literal["line", "text", "list", "risk"]


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    """The field's name in a document."""
    attr: str
    """The field's name on its dataclass."""
    kind: _Kind


_SECTIONS: Final[dict[str, tuple[str, tuple[_Field, ...]]]] = {
    "overview": ("overview", (
        _Field("owner", "owner", "line"),
        _Field("description", "description", "text"),
        _Field("problemType", "problem_type", "line"),
        _Field("algorithm", "algorithm", "line"),
        _Field("riskRating", "risk_rating", "risk"),
        _Field("riskExplanation", "risk_explanation", "text"),
    )),
    "intendedUses": ("intended_uses", (
        _Field("purpose", "purpose", "text"),
        _Field("users", "users", "list"),
        _Field("outOfScopeUses", "out_of_scope", "list"),
    )),
    "businessDetails": ("business_details", (
        _Field("businessProblem", "business_problem", "text"),
        _Field("stakeholders", "stakeholders", "list"),
        _Field("lineOfBusiness", "line_of_business", "line"),
    )),
}
"""The object sections of a document: document key -> (CardContent attribute, fields)."""

_PROSE: Final[dict[str, str]] = {
    "ethicalConsiderations": "ethical_considerations",
    "caveatsAndRecommendations": "caveats_and_recommendations",
}
"""The sections of a document that are one text each: document key -> CardContent attribute."""

_AUTOMATIC: Final[dict[str, str]] = {
    "trainingDetails": "lineage",
    "evaluation": "metrics",
}
"""Sections filled from the documented model package, which a document may not set."""

_RISKS: Final = tuple(r.value for r in RiskRating)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The characters a card's strings refuse, found in one pass: Unicode's Cc (control) category is
# exactly U+0000-U+001F and U+007F-U+009F, and Zl and Zp are U+2028 and U+2029 alone (the
# categories are stable by Unicode's policy). Prose keeps tab, line feed and carriage return.
_LINE_REFUSED: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TEXT_REFUSED: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def validate_card_document(doc: object) -> list[Problem]:
    """Every reason ``doc`` is not a valid card document, each at its path; empty if valid.

    Never raises, whatever it is given: it sits in front of user input (API bodies, YAML files).
    """
    if not isinstance(doc, Mapping):
        return [Problem(ROOT, f"a model card document is an object, not {_kind(doc)}")]
    problems: list[Problem] = []
    for key, value in doc.items():
        path = _join(ROOT, key)
        if key in _AUTOMATIC:
            problems.append(Problem(path, f"is filled automatically from the {_AUTOMATIC[key]} of the "
                                          "documented model package and cannot be set"))
        elif key in _PROSE:
            problems += _check_value("text", value, path)
        elif key in _SECTIONS:
            problems += _check_section(value, path, _SECTIONS[key][1])
        else:
            known = ", ".join([*_SECTIONS, *_PROSE])
            problems.append(Problem(path, f"unknown section; the sections are {known}"))
    return problems


def card_content_from_document(doc: Mapping[str, Any]) -> CardContent:
    """The content a YAML/JSON document describes; sections and fields left out are empty.

    Raises ValidationError listing every problem in ``details["problems"]`` as ``{"field", "reason"}``
    items, each field named by its path (``intendedUses.users[2]``).
    """
    _raise_if(validate_card_document(doc))
    sections: dict[str, Any] = {}
    for key, (attr, fields) in _SECTIONS.items():
        given = doc.get(key, {})
        section_type = _SECTION_TYPES[key]
        sections[attr] = section_type(**{f.attr: _convert(f.kind, given[f.key])
                                         for f in fields if f.key in given})
    for key, attr in _PROSE.items():
        if key in doc:
            sections[attr] = doc[key]
    return CardContent(**sections)


def to_document(content: CardContent) -> dict[str, Any]:
    """The editable sections as a JSON-ready object, every field present; the inverse of
    :func:`card_content_from_document`."""
    doc: dict[str, Any] = {}
    for key, (attr, fields) in _SECTIONS.items():
        section = getattr(content, attr)
        doc[key] = {f.key: _export(getattr(section, f.attr)) for f in fields}
    for key, attr in _PROSE.items():
        doc[key] = getattr(content, attr)
    return doc


_SECTION_TYPES: Final[dict[str, type[Overview] | type[IntendedUses] | type[BusinessDetails]]] = {
    "overview": Overview,
    "intendedUses": IntendedUses,
    "businessDetails": BusinessDetails,
}


def _check_section(value: object, path: str, fields: tuple[_Field, ...]) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem(path, f"must be an object, not {_kind(value)}")]
    by_key = {f.key: f for f in fields}
    problems: list[Problem] = []
    for key, item in value.items():
        where = _join(path, key)
        spec = by_key.get(key) if isinstance(key, str) else None
        if spec is None:
            known = ", ".join(by_key)
            problems.append(Problem(where, f"unknown field; {path} has {known}"))
        else:
            problems += _check_value(spec.kind, item, where)
    return problems


def _section_problems(key: str, section: object) -> list[Problem]:
    """The problems of a section built in code, named by the paths a document would use."""
    return [p for f in _SECTIONS[key][1]
            for p in _check_value(f.kind, getattr(section, f.attr), f"{key}.{f.key}")]


def _check_value(kind: _Kind, value: object, path: str) -> list[Problem]:
    if kind == "risk":
        if isinstance(value, str) and value in _RISKS:
            return []
        return [Problem(path, f"must be one of {', '.join(_RISKS)}, not {_kind(value)}")]
    if kind == "list":
        if not _is_array(value):
            return [Problem(path, f"must be an array of strings, not {_kind(value)}")]
        problems: list[Problem] = []
        if len(value) > MAX_ITEMS:
            problems.append(Problem(path, f"holds {len(value)} items, more than the {MAX_ITEMS} allowed"))
        for i, item in enumerate(value[:MAX_ITEMS]):
            problems += _check_string(item, f"{path}[{i}]", multiline=False, required=True)
        return problems
    return _check_string(value, path, multiline=kind == "text")


def _check_string(value: object, path: str, multiline: bool, required: bool = False) -> list[Problem]:
    if not isinstance(value, str):
        return [Problem(path, f"must be a string, not {_kind(value)}")]
    limit = MAX_TEXT if multiline else MAX_LINE
    if len(value) > limit:
        return [Problem(path, f"is {len(value)} characters long, more than the {limit} allowed")]
    found = (_TEXT_REFUSED if multiline else _LINE_REFUSED).search(value)
    if found is not None:
        char = found.group()
        if not multiline and char in "\n\r\u2028\u2029":
            return [Problem(path, "must be a single line")]
        return [Problem(path, f"contains the control character U+{ord(char):04X}")]
    if required and not value.strip():
        return [Problem(path, "must not be blank")]
    return []


def _convert(kind: _Kind, value: Any) -> Any:
    if kind == "risk":
        return RiskRating(value)
    if kind == "list":
        return tuple(value)
    return value


def _export(value: object) -> object:
    if isinstance(value, RiskRating):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return isinstance(value, list | tuple)


def _kind(value: object) -> str:
    """How a value reads in JSON terms, for messages addressed to people who wrote YAML or JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, int | float):
        return "a number"
    if _is_array(value):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _join(path: str, key: object) -> str:
    """The path of ``key`` inside ``path``: ``overview.owner``, or ``overview["a b"]`` when quoted."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return key if path == ROOT else f"{path}.{key}"
    name = json.dumps(key[:40], ensure_ascii=False) if isinstance(key, str) else _kind(key)
    return f"[{name}]" if path == ROOT else f"{path}[{name}]"


def _raise_if(problems: list[Problem]) -> None:
    if not problems:
        return
    shown = "; ".join(f"{p.field}: {p.reason}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise ValidationError(f"invalid model card: {shown}{more}",
                          problems=[{"field": p.field, "reason": p.reason} for p in problems])


# --------------------------------------------------------------------------------------------
# Rendering: one description of the page, written out as Markdown or as HTML
# --------------------------------------------------------------------------------------------

NOT_PROVIDED: Final = "Not provided"


@dataclass(frozen=True, slots=True)
class _Banner:
    status: str
    version: str


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True, slots=True)
class _Fields:
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Prose:
    label: str
    text: str


@dataclass(frozen=True, slots=True)
class _Items:
    label: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Table:
    label: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


_Block = _Banner | _Heading | _Fields | _Prose | _Items | _Table


def render_markdown(card: ModelCard, version: int | None = None) -> str:
    """The card as Markdown: the latest version, or the one numbered ``version``."""
    return "\n\n".join(_markdown_block(b) for b in _blocks(card, version)) + "\n"


def render_html(card: ModelCard, version: int | None = None) -> str:
    """The card as a standalone printable HTML page (inline CSS, no scripts, nothing fetched)."""
    shown = card.version(version if version is not None else card.count)
    title = html.escape(f"Model card: {card.group} (version {shown.number})")
    body = "\n".join(_html_block(b) for b in _blocks(card, version))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n<footer>{html.escape(str(card.version_crn(shown.number)))}</footer>\n"
        "</body>\n</html>\n"
    )


def _text(value: str | None) -> str:
    return value if value else ""


def _time(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _number(value: float) -> str:
    return repr(float(value))


def _blocks(card: ModelCard, number: int | None) -> list[_Block]:
    shown = card.version(number if number is not None else card.count)
    status = card.status_of(shown.number)
    status_text = str(status) if status is not None else "Superseded"
    count = card.count
    content = shown.content
    overview, uses, business = content.overview, content.intended_uses, content.business_details
    blocks: list[_Block] = [
        _Heading(1, f"Model card: {card.group}"),
        _Banner(status_text, f"version {shown.number} of {count}"),
        _Fields((
            ("Card", str(card.crn)),
            ("Account", card.account),
            ("Model package group", card.group),
            ("Status", status_text),
            ("Version", f"{shown.number} of {count}"),
            ("Approved version", str(card.approved_version) if card.approved_version else "none"),
            ("Written by", shown.author),
            ("Written at", _time(shown.time)),
            ("Change summary", " ".join(shown.summary.split())),
            ("Documents package", str(shown.package) if shown.package else "none yet"),
        )),
        _Heading(2, "Overview"),
        _Fields((
            ("Owner", overview.owner),
            ("Problem type", overview.problem_type),
            ("Algorithm", overview.algorithm),
            ("Risk rating", str(overview.risk_rating)),
        )),
        _Prose("Description", overview.description),
        _Prose("Risk explanation", overview.risk_explanation),
        _Heading(2, "Intended uses"),
        _Prose("Purpose", uses.purpose),
        _Items("Intended users", uses.users),
        _Items("Out-of-scope uses", uses.out_of_scope),
        _Heading(2, "Business details"),
        _Prose("Business problem", business.business_problem),
        _Items("Stakeholders", business.stakeholders),
        _Fields((("Line of business", business.line_of_business),)),
        _Heading(2, "Training details"),
    ]
    training, evaluation = shown.training, shown.evaluation
    if training is None or evaluation is None:
        none_yet = "Filled automatically once the card documents a model package; none yet."
        blocks += [_Prose("", none_yet), _Heading(2, "Evaluation"), _Prose("", none_yet)]
    else:
        blocks += [
            _Fields((
                ("Model package", str(evaluation.package)),
                ("Registered by", training.registered_by),
                ("Registered at", _time(training.registered_at)),
                ("Training run", _text(training.run)),
                ("Run started by", _text(training.run_started_by)),
                ("Product version", _text(training.product_version)),
                ("Format", str(training.format)),
                ("Promoted from", _text(training.origin)),
            )),
            _Items("Datasets", training.datasets),
            _Table("Parameters", ("Parameter", "Value"), training.parameters),
            _Heading(2, "Evaluation"),
            _Fields((("Evaluated package", str(evaluation.package)),)),
            _Table("Metrics", ("Metric", "Value"),
                   tuple((name, _number(value)) for name, value in evaluation.metrics)),
            _Items("Artifact digests (SHA-256)", evaluation.digests),
        ]
    blocks += [
        _Heading(2, "Ethical considerations"),
        _Prose("", content.ethical_considerations),
        _Heading(2, "Caveats and recommendations"),
        _Prose("", content.caveats_and_recommendations),
        _Heading(2, "History"),
        _Table("Versions", ("Version", "Time", "Author", "Summary", "Package"),
               tuple((str(v.number), _time(v.time), v.author, v.summary, str(v.package or ""))
                     for v in card.every_version())),
        _Table("Reviews", ("Time", "Actor", "From", "To", "Version", "Comment"),
               tuple((_time(c.time), c.actor, str(c.previous), str(c.status), str(c.version), c.comment)
                     for c in card.history)),
    ]
    return blocks


# ---- Markdown ---------------------------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
_MD_LINE_START = re.compile(r"^(?:([#=+\-])|(\d{1,9})([.)])(?=\s|$))")


def _md(text: str) -> str:
    """User text as literal inline Markdown on one line: every character that Markdown would read
    as markup (emphasis, code, links, raw HTML, entities, strikethrough, table pipes) is
    backslash-escaped, and line breaks fold into spaces."""
    return _MD_INLINE.sub(r"\\\1", " ".join(text.split()))


def _md_line(text: str) -> str:
    """User text that starts a line (a list item, a line of prose): also escape a leading marker
    that would make it a heading, list, rule or setext underline."""
    return _MD_LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", _md(text))


def _paragraphs(text: str) -> list[str]:
    """Free text split at its blank lines, whatever its line endings; blank paragraphs dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [p for p in re.split(r"\n[ \t]*\n\s*", text) if p.strip()]


def _md_prose(text: str) -> str:
    """Free text as literal Markdown paragraphs, keeping its paragraphs and its line breaks."""
    paragraphs = []
    for paragraph in _paragraphs(text):
        lines = [_md_line(line) for line in paragraph.splitlines() if line.strip()]
        if lines:
            paragraphs.append("\\\n".join(lines))
    return "\n\n".join(paragraphs)


def _md_label(label: str) -> str:
    return f"**{_md(label)}**"


def _markdown_block(block: _Block) -> str:
    empty = f"_{NOT_PROVIDED}_"
    match block:
        case _Banner(status, version):
            return f"> **Status: {_md(status)}** · {_md(version)}"
        case _Heading(level, text):
            return f"{'#' * level} {_md(text)}"
        case _Fields(rows):
            return "\n".join(f"- **{_md(label)}:** {_md(value) if value.strip() else empty}"
                             for label, value in rows)
        case _Prose(label, text):
            prose = _md_prose(text) or empty
            return f"{_md_label(label)}\n\n{prose}" if label else prose
        case _Items(label, items):
            listed = "\n".join(f"- {_md_line(item)}" for item in items) if items else empty
            return f"{_md_label(label)}\n\n{listed}"
        case _Table(label, headers, rows):
            if not rows:
                return f"{_md_label(label)}\n\n_None recorded_"
            lines = [_md_row(headers), "| " + " | ".join("---" for _ in headers) + " |"]
            lines += [_md_row(row) for row in rows]
            return f"{_md_label(label)}\n\n" + "\n".join(lines)
    raise AssertionError(f"unknown block {block!r}")  # pragma: no cover


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


# ---- HTML -------------------------------------------------------------------------------------

_STATUS_CLASSES: Final = {
    "Draft": "draft", "PendingReview": "pending", "Approved": "approved", "Archived": "archived",
    "Superseded": "superseded",
}

_CSS: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
       margin: 0; background: #fff; line-height: 1.45; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1rem 0 .3rem; }
.banner { display: inline-block; padding: .3rem .8rem; border-radius: .3rem; font-weight: 600;
          border: 1px solid currentColor; }
.banner.draft { color: #6e4b00; background: #fff8c5; }
.banner.pending { color: #0a3069; background: #ddf4ff; }
.banner.approved { color: #0f5323; background: #dafbe1; }
.banner.archived, .banner.superseded { color: #57606a; background: #f6f8fa; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.fields dt { font-weight: 600; }
dl.fields dd { margin: 0; overflow-wrap: anywhere; }
.prose { white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: #57606a; font-style: italic; }
table { border-collapse: collapse; margin: .5rem 0; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f6f8fa; }
ul { margin: .3rem 0; overflow-wrap: anywhere; }
footer { max-width: 60rem; margin: 2rem auto 1rem; padding: 0 1.5rem; color: #57606a;
         font-size: .8rem; }
@page { margin: 1.5cm; }
@media print {
  main { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; }
  tr, li, dl.fields { break-inside: avoid; }
  .banner { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


_EMPTY_SPAN: Final = f'<span class="empty">{NOT_PROVIDED}</span>'


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_label(label: str) -> str:
    return f"<h3>{_h(label)}</h3>\n" if label else ""


def _html_block(block: _Block) -> str:
    empty = f'<p class="empty">{NOT_PROVIDED}</p>'
    match block:
        case _Banner(status, version):
            css = _STATUS_CLASSES.get(status, "draft")
            return f'<p class="banner {css}">Status: {_h(status)} · {_h(version)}</p>'
        case _Heading(level, text):
            return f"<h{level}>{_h(text)}</h{level}>"
        case _Fields(rows):
            items = "".join(f"<dt>{_h(label)}</dt><dd>{_h(value) if value.strip() else _EMPTY_SPAN}</dd>"
                            for label, value in rows)
            return f'<dl class="fields">{items}</dl>'
        case _Prose(label, text):
            paragraphs = [p.strip("\n") for p in _paragraphs(text)]
            prose = "\n".join(f'<p class="prose">{_h(p)}</p>' for p in paragraphs) or empty
            return _html_label(label) + prose
        case _Items(label, items):
            listed = ("<ul>" + "".join(f"<li>{_h(item)}</li>" for item in items) + "</ul>"
                      if items else empty)
            return _html_label(label) + listed
        case _Table(label, headers, rows):
            if not rows:
                return _html_label(label) + '<p class="empty">None recorded</p>'
            head = "".join(f'<th scope="col">{_h(h)}</th>' for h in headers)
            body = "\n".join("<tr>" + "".join(f"<td>{_h(cell)}</td>" for cell in row) + "</tr>"
                             for row in rows)
            return (_html_label(label)
                    + f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
    raise AssertionError(f"unknown block {block!r}")  # pragma: no cover
