"""Which actions the caller may take: the console asks before it offers a button or a form.

Each ability is decided on the resource its command would authorize, built by the same function
the command's handler uses, so a forbid on the resource's attributes (no self-approval, a card's
authors) hides the button exactly when the command would refuse. The commands decide again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Decision, Resource
from charter.domain.datasets import Subscription
from charter.errors import CharterError, NotFound
from charter.services import resources
from charter.services.handlers import (
    account_requests,
    cards,
    datasets,
    deployments,
    endpoints,
    pipelines,
    projects,
    registry,
)
from charter.services.messagebus import HandlerContext

Builder = Callable[[HandlerContext, c.Ability], Resource]


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise NotFound(f"no {what}")
    return value


def _package(ctx: HandlerContext, ability: c.Ability) -> Resource:
    account = ctx.account(ability.account)
    group = _found(ctx.uow.registry.get_group(account.name, ability.name), "group")
    package = _found(ctx.uow.registry.get_package(account.name, group.name, int(ability.key)), "package")
    return registry._package_resource(ctx, account, group, package)


def _subscription(ctx: HandlerContext, ability: c.Ability) -> Resource:
    account = ctx.account(ability.account)
    sub = _found(ctx.uow.datasets.get_subscription(ability.key), "subscription")
    if sub.account != account.name:
        raise NotFound("the subscription is decided in another account")
    dataset = _found(ctx.uow.datasets.get_dataset(account.name, sub.dataset), "dataset")
    return datasets.subscription_resource(account, dataset, sub)


def _subscribe(ctx: HandlerContext, ability: c.Ability) -> Resource:
    """A subscription ``key`` (the subscribing account) would ask for to dataset ``name``."""
    account = ctx.account(ability.account)
    dataset = _found(ctx.uow.datasets.get_dataset(account.name, ability.name), "dataset")
    subscriber = ctx.account(ability.key)
    # The form asks for the reason; the draft needs one to be a valid subscription (no policy reads it).
    draft = Subscription("-", account.name, dataset.name, subscriber.name, ctx.identity.principal,
                         "the reason the form asks for", datetime.now(UTC))
    return datasets._request_resource(subscriber, dataset, draft)


def _account_request(ctx: HandlerContext, ability: c.Ability) -> Resource:
    request = _found(ctx.uow.account_requests.get(ability.key), "account request")
    return account_requests._resource(request)


def _card(ctx: HandlerContext, ability: c.Ability) -> Resource:
    account = ctx.account(ability.account)
    group = _found(ctx.uow.registry.get_group(account.name, ability.name), "group")
    return cards._card_resource(ctx, account, group, ctx.uow.cards.get(account.name, group.name))


def _pipeline(ctx: HandlerContext, ability: c.Ability) -> Resource:
    account = ctx.account(ability.account)
    pipeline = _found(ctx.uow.pipelines.get_pipeline(account.name, ability.name), "pipeline")
    return pipelines.pipeline_resource(account, pipeline.name)


def _launch(ctx: HandlerContext, ability: c.Ability) -> Resource:
    return projects._resource(ctx.account(ability.account), ability.name or "*")


def _execution(ctx: HandlerContext, ability: c.Ability) -> Resource:
    """Execution ``key`` of deployment pipeline ``name`` (its approval policies see the card's status)."""
    account = ctx.account(ability.account)
    pipeline = _found(ctx.uow.deployments.get_pipeline(account.name, ability.name), "deployment pipeline")
    execution = _found(ctx.uow.deployments.get_execution(ability.key) if 0 < len(ability.key) <= 64 else None,
                       "execution")
    if (execution.account, execution.pipeline) != (account.name, pipeline.name):
        raise NotFound("the execution belongs to another pipeline")
    return deployments.execution_resource(ctx, account, pipeline, execution)


def _endpoint(ctx: HandlerContext, ability: c.Ability) -> Resource:
    return endpoints.endpoint_resource(ctx.account(ability.account), ability.name)


def _audit(ctx: HandlerContext, ability: c.Ability) -> Resource:
    return resources.audit_trail(ability.account or None)


BUILDERS: dict[Action, Builder] = {
    Action.APPROVE_PACKAGE: _package,
    Action.REJECT_PACKAGE: _package,
    Action.APPROVE_SUBSCRIPTION: _subscription,
    Action.REJECT_SUBSCRIPTION: _subscription,
    Action.REVOKE_SUBSCRIPTION: _subscription,
    Action.SUBSCRIBE: _subscribe,
    Action.APPROVE_ACCOUNT_REQUEST: _account_request,
    Action.REJECT_ACCOUNT_REQUEST: _account_request,
    Action.EDIT_CARD: _card,
    Action.SUBMIT_CARD: _card,
    Action.APPROVE_CARD: _card,
    Action.REJECT_CARD: _card,
    Action.ARCHIVE_CARD: _card,
    Action.START_PIPELINE_RUN: _pipeline,
    Action.LAUNCH_PRODUCT: _launch,
    Action.APPROVE_DEPLOYMENT: _execution,
    Action.REJECT_DEPLOYMENT: _execution,
    Action.RETRY_DEPLOYMENT: _execution,
    Action.ROLLBACK_DEPLOYMENT: _execution,
    Action.INVOKE_ENDPOINT: _endpoint,
    Action.LIST_AUDIT: _audit,
    Action.VERIFY_AUDIT: _audit,
}


def _held(ctx: HandlerContext, ability: c.Ability) -> Decision:
    try:
        action = Action(ability.action)
        builder = BUILDERS[action]
        resource = builder(ctx, ability)
    except (ValueError, KeyError):
        return Decision(False, errors=(f"no ability {ability.action!r} to check",))
    except CharterError as error:  # a resource that is not there, or not readable by the caller
        return Decision(False, errors=(error.message,))
    return ctx.authorizer.decide(ctx.uow, ctx.identity, action, resource)


def check_abilities(cmd: c.CheckAbilities, ctx: HandlerContext) -> tuple[Decision, ...]:
    if not cmd.abilities:
        # Still one decision, so a page that asks about nothing has been decided too.
        principal = ctx.uow.org.get_principal(ctx.identity.principal)
        if principal is not None:
            ctx.authorizer.decide(ctx.uow, ctx.identity, Action.WHOAMI, resources.principal(principal))
        return ()
    return tuple(_held(ctx, a) for a in cmd.abilities[:500])


HANDLERS: dict[type, Any] = {c.CheckAbilities: check_abilities}
