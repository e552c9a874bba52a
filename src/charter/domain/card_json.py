"""Model cards as JSON-ready values: how a card's parts are stored and exported.

The editable content is written with :func:`charter.domain.cards.to_document` (camelCase, the
names people use in card files); the automatic sections and the history, which people never
write, keep the attribute names of the dataclasses. Every ``*_from_json`` inverts its ``*_to_json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from charter.domain.cards import (
    CardStatus,
    CardStatusChange,
    CardVersion,
    Evaluation,
    ModelCard,
    TrainingDetails,
    card_content_from_document,
    to_document,
)
from charter.domain.crn import CRN
from charter.domain.registry import ModelFormat


def training_to_json(training: TrainingDetails | None) -> dict[str, Any] | None:
    if training is None:
        return None
    return {
        "registered_by": training.registered_by,
        "registered_at": training.registered_at.isoformat(),
        "format": str(training.format),
        "run": training.run,
        "run_started_by": training.run_started_by,
        "datasets": list(training.datasets),
        "parameters": [list(kv) for kv in training.parameters],
        "product_version": training.product_version,
        "origin": training.origin,
    }


def training_from_json(doc: dict[str, Any] | None) -> TrainingDetails | None:
    if doc is None:
        return None
    return TrainingDetails(
        registered_by=doc["registered_by"],
        registered_at=datetime.fromisoformat(doc["registered_at"]),
        format=ModelFormat(doc["format"]),
        run=doc.get("run"),
        run_started_by=doc.get("run_started_by"),
        datasets=tuple(doc.get("datasets", ())),
        parameters=tuple((str(k), str(v)) for k, v in doc.get("parameters", ())),
        product_version=doc.get("product_version"),
        origin=doc.get("origin"),
    )


def evaluation_to_json(evaluation: Evaluation | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return {"package": str(evaluation.package),
            "metrics": [[name, value] for name, value in evaluation.metrics],
            "digests": list(evaluation.digests)}


def evaluation_from_json(doc: dict[str, Any] | None) -> Evaluation | None:
    if doc is None:
        return None
    return Evaluation(CRN.parse(doc["package"]),
                      tuple((str(name), float(value)) for name, value in doc.get("metrics", ())),
                      tuple(doc.get("digests", ())))


def history_to_json(history: tuple[CardStatusChange, ...]) -> list[dict[str, Any]]:
    return [{"status": str(h.status), "previous": str(h.previous), "actor": h.actor,
             "comment": h.comment, "time": h.time.isoformat(), "version": h.version} for h in history]


def history_from_json(items: list[dict[str, Any]]) -> tuple[CardStatusChange, ...]:
    return tuple(CardStatusChange(CardStatus(h["status"]), CardStatus(h["previous"]), h["actor"],
                                  h["comment"], datetime.fromisoformat(h["time"]), int(h["version"]))
                 for h in items)


def version_to_json(version: CardVersion) -> dict[str, Any]:
    return {
        "version": version.number, "author": version.author, "time": version.time.isoformat(),
        "summary": version.summary, "package": str(version.package) if version.package else None,
        "content": to_document(version.content), "training": training_to_json(version.training),
        "evaluation": evaluation_to_json(version.evaluation),
    }


def version_from_json(doc: dict[str, Any]) -> CardVersion:
    return CardVersion(int(doc["version"]), doc["author"], datetime.fromisoformat(doc["time"]),
                       doc["summary"], card_content_from_document(doc["content"]),
                       training_from_json(doc.get("training")), evaluation_from_json(doc.get("evaluation")))


def card_to_json(card: ModelCard, version: int | None = None) -> dict[str, Any]:
    """The card as one JSON object: its status, the version shown (the latest unless named), every
    version's summary line and the review history. The export format ``json``."""
    shown = card.version(version if version is not None else card.count)
    status = card.status_of(shown.number)
    return {
        "crn": str(card.crn),
        "account": card.account,
        "group": card.group,
        "status": str(card.status),
        "approved_version": card.approved_version,
        "version": version_to_json(shown) | {"status": str(status) if status else "Superseded",
                                             "crn": str(card.version_crn(shown.number))},
        "versions": [{"version": v.number, "author": v.author, "time": v.time.isoformat(),
                      "summary": v.summary, "package": str(v.package) if v.package else None}
                     for v in card.every_version()],
        "history": history_to_json(card.history),
    }
