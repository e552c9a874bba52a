"""Model cards: the status machine, versioning, separation of duties, documents and rendering."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from charter.domain.cards import (
    MAX_ITEMS,
    MAX_LINE,
    MAX_TEXT,
    TRANSITIONS,
    BusinessDetails,
    CardContent,
    CardStatus,
    CardVersion,
    Evaluation,
    IntendedUses,
    ModelCard,
    Overview,
    RiskRating,
    TrainingDetails,
    card_content_from_document,
    from_package,
    render_html,
    render_markdown,
    to_document,
    validate_card_document,
)
from charter.domain.crn import CRN
from charter.domain.registry import Artifact, Lineage, ModelFormat, ModelPackage
from charter.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError

T = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ACCOUNT, GROUP = "ml-shared-services", "churn"
DIGEST = "c" * 64
DATASET = "crn:charter:data-governance:data:dataset/customers/4"
ORIGIN = "crn:charter:ml-dev:registry:model-package/churn/12"

Draft, Pending, Approved, Archived = (CardStatus.DRAFT, CardStatus.PENDING_REVIEW,
                                      CardStatus.APPROVED, CardStatus.ARCHIVED)


def _package(version: int = 3, **changes: Any) -> ModelPackage:
    lineage = Lineage("sam", run="run-7", run_started_by="lena", datasets=(DATASET,),
                      product_version="1.4.0", parameters=(("max_depth", "6"), ("learning_rate", "0.1")))
    package = ModelPackage(ACCOUNT, GROUP, version, ModelFormat.SKOPS,
                           (Artifact("model.skops", 2048, DIGEST),), lineage, T - timedelta(days=1),
                           metrics=(("auc", 0.91), ("f1", 0.84)), origin=ORIGIN)
    return replace(package, **changes)


CONTENT = CardContent(
    overview=Overview(owner="priya", description="Predicts which customers will cancel.",
                      problem_type="binary classification", algorithm="gradient boosted trees",
                      risk_rating=RiskRating.MEDIUM, risk_explanation="Affects retention offers."),
    intended_uses=IntendedUses(purpose="Prioritise retention calls.", users=("retention team",),
                               out_of_scope=("credit decisions",)),
    business_details=BusinessDetails(business_problem="Churn costs revenue.",
                                     stakeholders=("sales", "finance"), line_of_business="consumer"),
    ethical_considerations="Tenure correlates with age.",
    caveats_and_recommendations="Retrain every quarter.",
)


def _card(author: str = "sam") -> ModelCard:
    return ModelCard.create(ACCOUNT, GROUP, author, T, CONTENT, _package())


def _edit(card: ModelCard, author: str = "sam", caveats: str = "Retrain monthly.",
          summary: str = "Update the caveats") -> ModelCard:
    return card.edit(author, T + timedelta(hours=1), summary,
                     content=replace(CONTENT, caveats_and_recommendations=caveats))


def _in(status: CardStatus) -> ModelCard:
    """A card written by sam, submitted by sam, approved and archived by mei, as far as ``status``."""
    card = _card()
    steps: list[tuple[CardStatus, Callable[[ModelCard], ModelCard]]] = [
        (Pending, lambda c: c.submit("sam", T)),
        (Approved, lambda c: c.approve("mei", T)),
        (Archived, lambda c: c.archive("mei", T)),
    ]
    for reached, step in steps:
        if card.status is status:
            break
        card = step(card)
        assert card.status is reached
    return card


def _problems(doc: object) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in validate_card_document(doc)]


# --- The status machine ---------------------------------------------------------------------------

ACTIONS: dict[str, Callable[[ModelCard], ModelCard]] = {
    "edit": lambda c: _edit(c, author="diego"),
    "submit": lambda c: c.submit("sam", T, "ready"),
    "approve": lambda c: c.approve("mei", T, "looks right"),
    "reject": lambda c: c.reject("mei", T, "evaluation is missing a fairness metric"),
    "archive": lambda c: c.archive("mei", T, "model retired"),
}
ALLOWED = {
    (Draft, "edit"): Draft,
    (Draft, "submit"): Pending,
    (Pending, "approve"): Approved,
    (Pending, "reject"): Draft,
    (Approved, "edit"): Draft,
    (Approved, "archive"): Archived,
}
REFUSED = [(s, a) for s in CardStatus for a in ACTIONS if (s, a) not in ALLOWED]


def test_a_new_card_is_a_draft_at_version_one() -> None:
    card = _card()
    assert (card.status, len(card.versions), card.approved_version, card.history) == (Draft, 1, None, ())
    assert (card.latest.number, card.latest.author, card.latest.time, card.latest.content) == (
        1, "sam", T, CONTENT)


@pytest.mark.parametrize(("status", "action"), list(ALLOWED), ids=lambda v: str(v))
def test_an_allowed_action_moves_the_card_to_its_status(status: CardStatus, action: str) -> None:
    assert ACTIONS[action](_in(status)).status is ALLOWED[(status, action)]


@pytest.mark.parametrize(("status", "action"), REFUSED, ids=lambda v: str(v))
def test_a_refused_action_raises_invalid_transition(status: CardStatus, action: str) -> None:
    card = _in(status)
    with pytest.raises(InvalidTransition) as refused:
        ACTIONS[action](card)
    assert refused.value.details["card"] == "crn:charter:ml-shared-services:cards:model-card/churn"
    assert (refused.value.details["status"], refused.value.details["action"]) == (str(status), action)


def test_the_published_transition_table_is_exactly_the_allowed_actions() -> None:
    assert dict(TRANSITIONS) == ALLOWED and len(REFUSED) == 14


@pytest.mark.parametrize("author", ["", "  ", "a\nb", "x" * (MAX_LINE + 1)])
def test_an_author_or_actor_must_be_named_on_one_line(author: str) -> None:
    with pytest.raises(ValidationError):
        ModelCard.create(ACCOUNT, GROUP, author, T)
    with pytest.raises(ValidationError):
        _card().submit(author, T)


def test_every_status_change_is_recorded_with_actor_comment_time_and_version() -> None:
    card = _card().submit("sam", T, "ready").reject("mei", T, "add fairness metrics")
    card = _edit(card).submit("sam", T + timedelta(hours=2), "again").approve("mei", T, "ok")
    assert [(c.previous, c.status, c.actor, c.comment, c.version) for c in card.history] == [
        (Draft, Pending, "sam", "ready", 1),
        (Pending, Draft, "mei", "add fairness metrics", 1),
        (Draft, Pending, "sam", "again", 2),
        (Pending, Approved, "mei", "ok", 2),
    ]
    assert card.history[2].time == T + timedelta(hours=2)


def test_a_rejection_needs_a_comment() -> None:
    with pytest.raises(ValidationError, match="must not be blank"):
        _in(Pending).reject("mei", T, "  ")


def test_a_rejected_card_can_be_edited_and_submitted_again() -> None:
    card = _edit(_in(Pending).reject("mei", T, "too vague")).submit("sam", T)
    assert (card.status, len(card.versions)) == (Pending, 2)


def test_a_card_under_review_refuses_edits_so_the_approved_version_is_the_submitted_one() -> None:
    with pytest.raises(InvalidTransition, match="pending review"):
        _edit(_in(Pending))


def test_an_archived_card_remains_readable() -> None:
    card = _in(Archived)
    assert card.approved == card.latest and card.status_of(1) is Archived
    assert "Status: Archived" in render_markdown(card)


def test_a_card_crn_names_account_and_group_and_a_version_crn_adds_the_number() -> None:
    card = _edit(_card())
    assert str(card.crn) == "crn:charter:ml-shared-services:cards:model-card/churn"
    assert card.version_crn(2) == CRN(ACCOUNT, "cards", "model-card", GROUP, "2")


# --- Versions -------------------------------------------------------------------------------------


def test_every_edit_makes_a_new_version_recording_author_time_summary_and_content() -> None:
    first = _card()
    second = _edit(first, author="diego", caveats="Retrain monthly.", summary="Monthly")
    third = _edit(second, author="priya", caveats="Retrain weekly.", summary="Weekly")
    assert [(v.number, v.author, v.summary) for v in third.versions] == [
        (1, "sam", "Created the card"),
        (2, "diego", "Monthly"),
        (3, "priya", "Weekly"),
    ]
    assert third.version(2).time == T + timedelta(hours=1)
    assert third.version(3).content.caveats_and_recommendations == "Retrain weekly."


def test_an_edit_leaves_earlier_versions_untouched() -> None:
    first = _card()
    second = _edit(first)
    assert second.versions[0] is first.versions[0] and first.versions == (first.latest,)


def test_status_changes_do_not_make_new_versions() -> None:
    assert len(_in(Archived).versions) == 1


def test_an_edit_that_changes_nothing_is_refused() -> None:
    card = _card()
    with pytest.raises(ValidationError, match="changes nothing"):
        card.edit("diego", T, "no-op", content=CONTENT, package=_package())


def test_an_edit_needs_a_summary() -> None:
    with pytest.raises(ValidationError, match="summary"):
        _card().edit("diego", T, "", content=CardContent())


def test_reading_a_version_that_does_not_exist_is_not_found() -> None:
    card = _card()
    for number in (0, 2):
        with pytest.raises(NotFound):
            card.version(number)
    with pytest.raises(NotFound):
        render_html(card, version=5)


def test_editing_an_approved_card_starts_a_draft_and_keeps_the_approved_version_readable() -> None:
    approved = _in(Approved)
    edited = _edit(approved, author="diego")
    assert (edited.status, edited.approved_version, len(edited.versions)) == (Draft, 1, 2)
    assert edited.approved == approved.latest
    assert (edited.status_of(1), edited.status_of(2)) == (Approved, Draft)
    assert edited.approval == approved.history[-1]
    assert (edited.history[-1].previous, edited.history[-1].status, edited.history[-1].version) == (
        Approved, Draft, 2)


def test_approving_the_new_draft_supersedes_the_previously_approved_version() -> None:
    card = _edit(_in(Approved), author="diego").submit("diego", T).approve("mei", T)
    assert (card.approved_version, card.status_of(1), card.status_of(2)) == (2, None, Approved)
    assert card.approval is not None and card.approval.version == 2
    assert "Status: Superseded" in render_markdown(card, version=1)


def test_a_card_is_rebuilt_only_from_consistent_parts() -> None:
    version = _card().latest
    for broken in (
        {"versions": ()},
        {"versions": (version, version)},
        {"versions": (version,), "approved_version": 2},
        {"versions": (version,), "status": Approved},
    ):
        with pytest.raises(ValidationError):
            ModelCard(ACCOUNT, GROUP, **broken)


# --- Separation of duties -------------------------------------------------------------------------


def test_the_last_author_cannot_approve() -> None:
    with pytest.raises(PermissionDenied) as denied:
        _in(Pending).approve("sam", T)
    assert denied.value.details["policy"] == "card-approver-is-not-author"
    assert denied.value.details["version"] == 1


def test_no_author_of_any_version_under_review_can_approve() -> None:
    pending = _edit(_card(author="sam"), author="diego").submit("diego", T)
    for author in ("sam", "diego"):
        with pytest.raises(PermissionDenied):
            pending.approve(author, T)
    assert pending.approve("mei", T).status is Approved


def test_the_author_of_an_already_approved_version_may_approve_a_later_one() -> None:
    pending = _edit(_in(Approved), author="diego").submit("diego", T)
    assert pending.approve("sam", T).approved_version == 2


def test_a_card_holding_its_latest_version_only_edits_on_and_never_guesses_the_rest() -> None:
    """A card read to document one more package holds its latest version: an edit numbers the new
    version after it, while what needs an older one (an approval's authors, the history) refuses
    rather than decide on part of the card."""
    full = _edit(_edit(_card(author="sam"), author="diego"), author="lena", caveats="Retrain yearly.")
    latest = replace(full, versions=full.versions[-1:], first=3)
    edited = _edit(latest, author="mei", caveats="Retrain weekly.")
    assert (edited.first, edited.count, [v.number for v in edited.versions]) == (3, 4, [3, 4])
    assert edited.latest.content == _edit(full, author="mei", caveats="Retrain weekly.").latest.content
    pending = latest.submit("lena", T)
    assert pending.history[-1].version == 3
    with pytest.raises(LookupError):
        pending.approve("mei", T)  # sam and diego wrote versions under review that were not read
    with pytest.raises(LookupError):
        render_markdown(latest)
    with pytest.raises(ValidationError, match="without gaps"):
        replace(full, versions=full.versions[-1:], first=2)


def test_whoever_submits_without_writing_may_approve() -> None:
    assert _card().submit("mei", T).approve("mei", T).status is Approved


def test_an_approval_of_another_version_than_the_one_under_review_is_a_conflict() -> None:
    pending = _edit(_card()).submit("sam", T)
    with pytest.raises(Conflict) as conflict:
        pending.approve("mei", T, version=1)
    assert type(conflict.value) is Conflict
    assert pending.approve("mei", T, version=2).approved_version == 2


# --- The automatic sections -----------------------------------------------------------------------


def test_training_details_and_evaluation_are_filled_from_the_package_lineage_and_metrics() -> None:
    training, evaluation = from_package(_package())
    assert training == TrainingDetails(
        registered_by="sam", registered_at=T - timedelta(days=1), format=ModelFormat.SKOPS,
        run="run-7", run_started_by="lena", datasets=(DATASET,),
        parameters=(("max_depth", "6"), ("learning_rate", "0.1")), product_version="1.4.0",
        origin=ORIGIN)
    assert evaluation == Evaluation(CRN.parse("crn:charter:ml-shared-services:registry:model-package/churn/3"),
                                    (("auc", 0.91), ("f1", 0.84)), (DIGEST,))


def test_a_version_records_the_package_it_documents() -> None:
    card = _card()
    assert str(card.latest.package) == "crn:charter:ml-shared-services:registry:model-package/churn/3"
    assert (card.latest.training, card.latest.evaluation) == from_package(_package())


def test_documenting_a_newer_package_makes_a_version_that_keeps_the_content() -> None:
    card = _card().edit("sam", T, "document version 4", package=_package(4, metrics=(("auc", 0.93),)))
    assert (card.latest.number, card.latest.content) == (2, CONTENT)
    assert card.latest.package is not None and card.latest.package.version == "4"
    assert card.latest.evaluation is not None and card.latest.evaluation.metrics == (("auc", 0.93),)
    first = card.version(1).package
    assert first is not None and first.version == "3"


def test_an_edit_without_a_package_keeps_the_documented_package() -> None:
    assert _edit(_card()).latest.evaluation == _card().latest.evaluation


def test_a_card_may_exist_before_it_documents_any_package() -> None:
    card = ModelCard.create(ACCOUNT, GROUP, "sam", T)
    assert (card.latest.content, card.latest.package, card.latest.training) == (CardContent(), None, None)


@pytest.mark.parametrize(("account", "group"), [("ml-dev", GROUP), (ACCOUNT, "fraud")])
def test_a_package_of_another_group_cannot_be_documented(account: str, group: str) -> None:
    stranger = replace(_package(), account=account, group=group)
    with pytest.raises(ValidationError) as refused:
        _card().edit("sam", T, "wrong group", package=stranger)
    assert refused.value.details["field"] == "package"
    with pytest.raises(ValidationError):
        ModelCard.create(ACCOUNT, GROUP, "sam", T, package=stranger)


def test_a_version_has_both_automatic_sections_or_neither() -> None:
    training, _ = from_package(_package())
    with pytest.raises(ValidationError):
        CardVersion(1, "sam", T, "x", CONTENT, training=training)


# --- Documents ------------------------------------------------------------------------------------

DOCUMENT: dict[str, Any] = {
    "overview": {"owner": "priya", "description": "Predicts which customers will cancel.",
                 "problemType": "binary classification", "algorithm": "gradient boosted trees",
                 "riskRating": "medium", "riskExplanation": "Affects retention offers."},
    "intendedUses": {"purpose": "Prioritise retention calls.", "users": ["retention team"],
                     "outOfScopeUses": ["credit decisions"]},
    "businessDetails": {"businessProblem": "Churn costs revenue.", "stakeholders": ["sales", "finance"],
                        "lineOfBusiness": "consumer"},
    "ethicalConsiderations": "Tenure correlates with age.",
    "caveatsAndRecommendations": "Retrain every quarter.",
}


def test_a_document_is_read_into_content() -> None:
    assert card_content_from_document(DOCUMENT) == CONTENT


def test_sections_and_fields_left_out_of_a_document_are_empty() -> None:
    content = card_content_from_document({"overview": {"owner": "priya"}})
    assert content == CardContent(overview=Overview(owner="priya"))
    assert content.overview.risk_rating is RiskRating.UNKNOWN


def test_to_document_writes_every_editable_field_under_its_document_name() -> None:
    assert to_document(CONTENT) == DOCUMENT


def test_content_survives_a_round_trip_through_a_json_document() -> None:
    for content in (CONTENT, CardContent()):
        assert card_content_from_document(json.loads(json.dumps(to_document(content)))) == content


@pytest.mark.parametrize(("doc", "path", "reason"), [
    ({"summary": "x"}, "summary",
     "unknown section; the sections are overview, intendedUses, businessDetails, "
     "ethicalConsiderations, caveatsAndRecommendations"),
    ({"overview": {"colour": "red"}}, "overview.colour",
     "unknown field; overview has owner, description, problemType, algorithm, riskRating, riskExplanation"),
    ({"intendedUses": {"the users": []}}, 'intendedUses["the users"]',
     "unknown field; intendedUses has purpose, users, outOfScopeUses"),
    ({"businessDetails": {7: "x"}}, "businessDetails[a number]",
     "unknown field; businessDetails has businessProblem, stakeholders, lineOfBusiness"),
])
def test_unknown_sections_and_fields_are_refused_by_path(doc: dict[Any, Any], path: str, reason: str) -> None:
    assert _problems(doc) == [(path, reason)]


@pytest.mark.parametrize(("section", "source"), [("trainingDetails", "lineage"), ("evaluation", "metrics")])
def test_automatic_sections_cannot_be_set_by_a_document(section: str, source: str) -> None:
    assert _problems({section: {"metrics": [["auc", 1.0]]}}) == [
        (section, f"is filled automatically from the {source} of the documented model package "
                  "and cannot be set")]


@pytest.mark.parametrize(("doc", "path", "reason"), [
    ({"overview": []}, "overview", "must be an object, not an array"),
    ({"overview": {"owner": 5}}, "overview.owner", "must be a string, not a number"),
    ({"overview": {"algorithm": True}}, "overview.algorithm", "must be a string, not true"),
    ({"intendedUses": {"users": "everyone"}}, "intendedUses.users",
     "must be an array of strings, not the string 'everyone'"),
    ({"intendedUses": {"outOfScopeUses": ["credit", None]}}, "intendedUses.outOfScopeUses[1]",
     "must be a string, not null"),
    ({"businessDetails": {"stakeholders": [" "]}}, "businessDetails.stakeholders[0]", "must not be blank"),
    ({"ethicalConsiderations": {"text": "x"}}, "ethicalConsiderations", "must be a string, not an object"),
])
def test_values_of_the_wrong_type_are_refused_by_path(doc: dict[str, Any], path: str, reason: str) -> None:
    assert _problems(doc) == [(path, reason)]


@pytest.mark.parametrize("value", ["severe", "High", "", None, 3])
def test_a_risk_rating_is_low_medium_high_or_unknown(value: object) -> None:
    ((path, reason),) = _problems({"overview": {"riskRating": value}})
    assert path == "overview.riskRating" and reason.startswith("must be one of low, medium, high, unknown")


@pytest.mark.parametrize("value", list(RiskRating))
def test_every_risk_rating_is_accepted(value: RiskRating) -> None:
    content = card_content_from_document({"overview": {"riskRating": value.value}})
    assert content.overview.risk_rating is value


@pytest.mark.parametrize(("doc", "path", "reason"), [
    ({"overview": {"owner": "x" * (MAX_LINE + 1)}}, "overview.owner",
     f"is {MAX_LINE + 1} characters long, more than the {MAX_LINE} allowed"),
    ({"overview": {"description": "x" * (MAX_TEXT + 1)}}, "overview.description",
     f"is {MAX_TEXT + 1} characters long, more than the {MAX_TEXT} allowed"),
    ({"intendedUses": {"users": ["x" * (MAX_LINE + 1)]}}, "intendedUses.users[0]",
     f"is {MAX_LINE + 1} characters long, more than the {MAX_LINE} allowed"),
    ({"intendedUses": {"users": ["x"] * (MAX_ITEMS + 1)}}, "intendedUses.users",
     f"holds {MAX_ITEMS + 1} items, more than the {MAX_ITEMS} allowed"),
])
def test_values_over_the_length_limits_are_refused(doc: dict[str, Any], path: str, reason: str) -> None:
    assert _problems(doc) == [(path, reason)]


def test_values_at_the_length_limits_are_accepted() -> None:
    assert _problems({"overview": {"owner": "x" * MAX_LINE, "description": "x" * MAX_TEXT},
                      "intendedUses": {"users": ["x"] * MAX_ITEMS}}) == []


@pytest.mark.parametrize("owner", ["a\nb", "a\rb", "a\u2028b"])
def test_single_line_fields_refuse_line_breaks(owner: str) -> None:
    assert _problems({"overview": {"owner": owner}}) == [("overview.owner", "must be a single line")]


def test_free_text_keeps_line_breaks_and_tabs_but_refuses_other_control_characters() -> None:
    assert _problems({"overview": {"description": "a\r\n\tb"}}) == []
    assert _problems({"overview": {"description": "a\x00b"}}) == [
        ("overview.description", "contains the control character U+0000")]


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    doc = {"overview": {"owner": 1, "riskRating": "severe"}, "evaluation": {},
           "intendedUses": {"users": [2]}}
    with pytest.raises(ValidationError) as refused:
        card_content_from_document(doc)
    assert [p["field"] for p in refused.value.details["problems"]] == [
        "overview.owner", "overview.riskRating", "evaluation", "intendedUses.users[0]"]
    assert refused.value.message.startswith("invalid model card: overview.owner: must be a string")


@pytest.mark.parametrize("doc", [[], "overview: {}", None])
def test_a_document_that_is_not_an_object_is_refused(doc: object) -> None:
    assert [path for path, _ in _problems(doc)] == ["(document)"]
    with pytest.raises(ValidationError):
        card_content_from_document(doc)  # type: ignore[arg-type]


@pytest.mark.parametrize(("build", "path"), [
    (lambda: Overview(owner="a\nb"), "overview.owner"),
    (lambda: IntendedUses(users=("",)), "intendedUses.users[0]"),
    (lambda: BusinessDetails(line_of_business="x" * (MAX_LINE + 1)), "businessDetails.lineOfBusiness"),
    (lambda: CardContent(caveats_and_recommendations="x" * (MAX_TEXT + 1)), "caveatsAndRecommendations"),
])
def test_content_built_in_code_is_held_to_the_same_rules_as_a_document(
        build: Callable[[], object], path: str) -> None:
    with pytest.raises(ValidationError) as refused:
        build()
    assert [p["field"] for p in refused.value.details["problems"]] == [path]


printable = st.characters(max_codepoint=0x2FF, blacklist_categories=("Cc", "Cs"))
lines = st.text(printable, max_size=30)
texts = st.text(printable | st.sampled_from("\n\t\r"), max_size=60)
items = st.lists(lines.filter(str.strip), max_size=4).map(tuple)


@settings(max_examples=60, deadline=None)
@given(st.builds(
    CardContent,
    overview=st.builds(Overview, owner=lines, description=texts, problem_type=lines, algorithm=lines,
                       risk_rating=st.sampled_from(RiskRating), risk_explanation=texts),
    intended_uses=st.builds(IntendedUses, purpose=texts, users=items, out_of_scope=items),
    business_details=st.builds(BusinessDetails, business_problem=texts, stakeholders=items,
                               line_of_business=lines),
    ethical_considerations=texts, caveats_and_recommendations=texts,
))
def test_any_content_survives_a_round_trip_through_its_document(content: CardContent) -> None:
    assert card_content_from_document(json.loads(json.dumps(to_document(content)))) == content


# --- Rendering ------------------------------------------------------------------------------------

SCRIPT = '<script>alert("owned")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;"
VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})


class _Page(HTMLParser):
    """Collects tags and attributes, and notes every end tag that does not close the open one."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.misnested: list[str] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.misnested.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hostile_card() -> ModelCard:
    content = CardContent(
        overview=Overview(owner=SCRIPT, description=f"Predicts churn.\n\n{SCRIPT}"),
        intended_uses=IntendedUses(users=(SCRIPT,)),
        business_details=BusinessDetails(stakeholders=(SCRIPT,)),
        ethical_considerations=SCRIPT,
    )
    package = _package(metrics=((SCRIPT, 0.5),), lineage=Lineage(SCRIPT, parameters=((SCRIPT, SCRIPT),)))
    return ModelCard.create(ACCOUNT, GROUP, SCRIPT, T, content, package, summary=SCRIPT)


def test_html_escapes_every_piece_of_user_text() -> None:
    page = render_html(_hostile_card())
    assert "<script" not in page.lower() and SCRIPT not in page
    # owner, description, user, stakeholder, ethics, registered by, parameter name and value,
    # metric name, the version's author and summary (twice: header and history)
    assert page.count(ESCAPED) == 13
    assert "script" not in _Page(page).tags


def test_html_is_a_complete_standalone_page_without_scripts_or_fetches() -> None:
    page = render_html(_in(Approved))
    parsed = _Page(page)
    assert page.startswith("<!DOCTYPE html>\n<html lang=\"en\">") and page.endswith("</html>\n")
    assert {"html", "head", "meta", "title", "style", "body"} <= parsed.tags
    assert parsed.tags.isdisjoint({"script", "link", "img", "iframe", "object"})
    assert parsed.attributes.isdisjoint({"src", "href", "onload", "onclick"})
    assert "default-src 'none'" in page and "@media print" in page


def test_html_is_well_formed() -> None:
    parsed = _Page(render_html(_hostile_card()))
    assert (parsed.open, parsed.misnested) == ([], [])


def test_html_shows_status_version_sections_metrics_and_lineage() -> None:
    card = _edit(_in(Approved), author="diego")
    text = " ".join(_Page(render_html(card)).text)
    for expected in ("Status: Draft · version 2 of 2", "Approved version", "Overview", "Intended uses",
                     "Business details", "Training details", "Evaluation", "Ethical considerations",
                     "Caveats and recommendations", "Retrain monthly.", "priya", "medium",
                     "crn:charter:ml-shared-services:registry:model-package/churn/3", "run-7", "lena",
                     DATASET, "max_depth", "1.4.0", ORIGIN, "auc", "0.91", "f1", "0.84", DIGEST):
        assert expected in text, expected
    assert '<p class="banner draft">' in render_html(card)
    assert '<p class="banner approved">' in render_html(card, version=1)


_GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _cells(markdown: str) -> list[list[str]]:
    """Every table row of the Markdown, as a GFM renderer reads its cells."""
    rows = re.findall(r"<tr>(.*?)</tr>", _GFM.render(markdown), re.S)
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row, re.S) for row in rows]


def test_markdown_escapes_pipes_and_backslashes_in_table_cells() -> None:
    package = _package(metrics=(("f1|macro", 0.5), ("a\\|b", 1.0)),
                       lineage=Lineage("sam", parameters=(("loss", "x|y|z"),)))
    markdown = render_markdown(ModelCard.create(ACCOUNT, GROUP, "sam", T, package=package))
    assert "| f1\\|macro | 0.5 |" in markdown
    assert "| a\\\\\\|b | 1.0 |" in markdown
    assert ["f1|macro", "0.5"] in _cells(markdown)
    assert ["a\\|b", "1.0"] in _cells(markdown)
    assert ["loss", "x|y|z"] in _cells(markdown)


def test_markdown_shows_user_markup_as_text() -> None:
    description = "**bold** <b>tag</b> [link](javascript:alert(1)) `code` ~~gone~~ &amp;"
    content = CardContent(overview=Overview(description=description),
                          intended_uses=IntendedUses(users=("# heading", "1. ordered", "- nested")))
    rendered = _GFM.render(render_markdown(ModelCard.create(ACCOUNT, GROUP, "sam", T, content)))
    for markup in ("<strong>bold", "<b>", "<a ", "<code>", "<s>", "<ol", "<ul>\n<li>\n<ul>"):
        assert markup not in rendered, markup
    assert rendered.count("<h1>") == 1
    assert "**bold** &lt;b&gt;tag&lt;/b&gt; [link](javascript:alert(1)) `code` ~~gone~~ &amp;amp;" in rendered
    assert "<li># heading</li>" in rendered and "<li>1. ordered</li>" in rendered
    assert "<li>- nested</li>" in rendered


def test_markdown_keeps_paragraphs_and_line_breaks_of_free_text() -> None:
    content = CardContent(caveats_and_recommendations="One.\nTwo.\n\n\nThree.")
    markdown = render_markdown(ModelCard.create(ACCOUNT, GROUP, "sam", T, content))
    assert "One.\\\nTwo.\n\nThree." in markdown
    assert "<p>One.<br />\nTwo.</p>\n<p>Three.</p>" in _GFM.render(markdown)


@settings(max_examples=80, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40))
def test_any_user_text_reads_literally_in_rendered_markdown(text: str) -> None:
    """A GFM renderer shows list items and table cells exactly as written, whitespace collapsed."""
    expected = " ".join(text.split())
    if not expected:
        return
    package = _package(metrics=((text, 1.0),))
    card = ModelCard.create(ACCOUNT, GROUP, "sam", T, CardContent(intended_uses=IntendedUses(users=(text,))),
                            package)
    rendered = _GFM.render(render_markdown(card))
    escaped = expected.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert f"<li>{escaped}</li>" in rendered
    assert [expected, "1.0"] in [[_unescape(c) for c in row] for row in _cells(render_markdown(card))]


def _unescape(cell: str) -> str:
    return cell.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


def test_markdown_shows_status_version_sections_metrics_and_lineage() -> None:
    markdown = render_markdown(_in(Approved))
    for expected in ("# Model card: churn", "> **Status: Approved** · version 1 of 1", "## Overview",
                     "## Intended uses", "## Business details", "## Training details", "## Evaluation",
                     "## Ethical considerations", "## Caveats and recommendations", "## History",
                     "- **Risk rating:** medium", "- **Training run:** run-7",
                     "- **Registered by:** sam", "- **Product version:** 1.4.0", f"- {DATASET}",
                     "| max\\_depth | 6 |", "| auc | 0.91 |", "| f1 | 0.84 |",
                     "- **Evaluated package:** crn:charter:ml-shared-services:registry:model-package/churn/3",
                     "| 2026-03-01T09:30:00+00:00 | mei | PendingReview | Approved | 1 |  |"):
        assert expected in markdown, expected


def test_rendering_an_older_version_shows_that_version() -> None:
    card = _edit(_in(Approved), author="diego", caveats="Retrain monthly.")
    older, newer = render_markdown(card, version=1), render_markdown(card)
    assert "Retrain every quarter." in older and "Retrain monthly." not in older
    assert "Retrain monthly." in newer and "version 2 of 2" in newer
    assert "**Status: Approved** · version 1 of 2" in older


def test_a_card_documenting_no_package_says_its_automatic_sections_are_not_filled_yet() -> None:
    card = ModelCard.create(ACCOUNT, GROUP, "sam", T)
    for page in (render_markdown(card), render_html(card)):
        assert page.count("once the card documents a model package; none yet") == 2
        assert "Not provided" in page
