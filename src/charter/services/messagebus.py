"""The message bus: one handler per command or query, one transaction per message.

The bus, not the handlers, owns the transaction and the audit trail around it:
- a command's handler states what it did (``ctx.audit``); the bus appends those records and the
  events the handler emitted in the same transaction as the change, then commits;
- any refusal rolls the change back and is then audited in a transaction of its own, so a denial
  leaves a record and nothing else;
- a query that does work outside the database (streaming an upload into the artifact store, where
  holding a write transaction would stall every other writer) may still audit what it did: its
  records are appended once its read-only transaction has closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from charter.domain.audit import AuditEntry, Outcome
from charter.domain.authz import Action, Decision, Resource
from charter.domain.commands import Command, Message, Transfer
from charter.domain.crn import CRN
from charter.domain.events import Event
from charter.domain.identity import Identity
from charter.domain.org import MANAGEMENT_ACCOUNT, Account
from charter.errors import CharterError, NotFound, PermissionDenied, ServerError, Unauthenticated
from charter.services.audit import AuditTrail
from charter.services.authentication import authenticate
from charter.services.authorization import Authorizer
from charter.services.ports import (
    ArtifactStore,
    Clock,
    EndpointRuntime,
    UnitOfWork,
    UnitOfWorkFactory,
)

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class Limits:
    session_default_seconds: int = 3600
    session_max_seconds: int = 12 * 3600
    token_max_days: int = 365


@dataclass
class HandlerContext:
    uow: UnitOfWork
    identity: Identity
    authorizer: Authorizer
    trail: AuditTrail
    clock: Clock
    limits: Limits
    artifacts: ArtifactStore | None
    request_id: str | None = None
    audited: list[AuditEntry] = field(default_factory=list)
    target: tuple[str, str, str] | None = None  # (account, resource, action) of the last decision
    emitted: int = 0

    def account(self, name: str) -> Account:
        """The account named ``name``; NotFound when the organization has none."""
        account = self.uow.org.get_account(name)
        if account is None:
            raise NotFound(f"unknown account {name!r}", account=name)
        return account

    def authorize(self, action: Action, resource: Resource) -> Decision:
        self.target = (resource.account, str(resource.crn), str(action))
        return self.authorizer.require(self.uow, self.identity, action, resource)

    def audit(self, action: Action | str, resource: Resource, **details: Any) -> None:
        self.audited.append(
            AuditEntry(
                actor=self.identity.principal,
                via=self.identity.via,
                account=resource.account,
                action=str(action),
                resource=str(resource.crn),
                request_id=self.request_id,
                details=details,
            )
        )

    def emit(self, event: Event) -> None:
        self.uow.outbox.add(replace(event, time=self.clock.now()))
        self.emitted += 1


Handler = Callable[[Any, HandlerContext], Any]


@dataclass
class MessageBus:
    uow_factory: UnitOfWorkFactory
    authorizer: Authorizer
    trail: AuditTrail
    clock: Clock
    limits: Limits = field(default_factory=Limits)
    artifacts: ArtifactStore | None = None
    endpoints: EndpointRuntime | None = None
    """Where invocations are served (the serving supervisor of this process), when it runs one."""
    handlers: dict[type[Message], Handler] = field(default_factory=dict)
    generation: int = 0
    """How many commands this bus has committed: whatever a process remembers about credentials,
    roles or policies (the invocation gate) is good only for the generation it was read in."""
    outbox_listeners: list[Callable[[], None]] = field(default_factory=list)
    """Called after a commit that wrote events, so a dispatcher in this process starts at once
    instead of at its next poll (dispatchers in other processes still poll)."""

    def register(self, message_type: type[M], handler: Callable[[M, HandlerContext], Any]) -> None:
        if message_type in self.handlers:
            raise ValueError(f"{message_type.__name__} already has a handler")
        self.handlers[message_type] = handler

    def handle(self, message: Message, identity: Identity | None = None, request_id: str | None = None,
               *, bearer: str | None = None) -> Any:
        """Handle one message as ``identity``, or as whoever ``bearer`` authenticates.

        Authenticating with the bearer inside the message's own transaction saves a round trip per
        request; a refused credential is still audited on its own, and the message is not handled.
        """
        handler = self.handlers.get(type(message))
        if handler is None:
            raise ServerError(f"no handler for {type(message).__name__}")
        ctx: HandlerContext | None = None
        refused: Unauthenticated | None = None
        try:
            with self.uow_factory(readonly=not isinstance(message, Command)) as uow:
                if identity is None:
                    try:
                        identity = authenticate(uow, bearer, self.clock.now())
                    except Unauthenticated as error:
                        refused = error
                if identity is not None:
                    ctx = HandlerContext(uow, identity, self.authorizer, self.trail, self.clock,
                                         self.limits, self.artifacts, request_id)
                    result = handler(message, ctx)
                    if isinstance(message, Command):
                        if not ctx.audited:
                            raise ServerError(f"{type(message).__name__} changed state without an audit record")
                        for entry in ctx.audited:
                            self.trail.append(uow, entry)
                        uow.commit()
                        self.generation += 1
                        if ctx.emitted:
                            for listener in self.outbox_listeners:
                                listener()
            if ctx is not None:
                if not isinstance(message, Command):
                    for entry in ctx.audited:
                        self.record(entry)
                return result
        except CharterError as error:
            audited = isinstance(message, Command | Transfer) or isinstance(error, PermissionDenied)
            if identity is not None and audited:
                self._audit_refusal(message, identity, request_id, error, ctx)
            raise
        assert refused is not None
        self._audit_sign_in_failure(refused, request_id)
        raise refused

    def _audit_refusal(self, message: Message, identity: Identity, request_id: str | None,
                       error: CharterError, ctx: HandlerContext | None) -> None:
        account, resource, action = (
            ctx.target if ctx and ctx.target
            else (MANAGEMENT_ACCOUNT, str(CRN(MANAGEMENT_ACCOUNT, "org", "request", "-")), type(message).__name__)
        )
        entry = AuditEntry(
            actor=identity.principal,
            via=identity.via,
            account=account,
            action=action,
            resource=resource,
            outcome=Outcome.DENIED if isinstance(error, PermissionDenied) else Outcome.FAILED,
            policy=error.details.get("policy") if isinstance(error, PermissionDenied) else None,
            request_id=request_id,
            details={"error": error.type_name, "message": error.message},
        )
        self.record(entry)

    def authenticate(self, bearer: str | None, request_id: str | None = None) -> Identity:
        """The identity behind a bearer credential; a refused credential is audited."""
        with self.uow_factory(readonly=True) as uow:
            try:
                return authenticate(uow, bearer, self.clock.now())
            except Unauthenticated as refused:
                failure = refused
        self._audit_sign_in_failure(failure, request_id)
        raise failure

    def _audit_sign_in_failure(self, failure: Unauthenticated, request_id: str | None) -> None:
        self.record(AuditEntry(
            actor=None, via=None, account=MANAGEMENT_ACCOUNT, action="iam:Authenticate",
            resource=str(CRN(MANAGEMENT_ACCOUNT, "iam", "credential", failure.details.get("credential", "-"))),
            outcome=Outcome.DENIED, request_id=request_id,
            details={"error": failure.type_name, "message": failure.message}))

    def record(self, entry: AuditEntry) -> None:
        """Append one record in a transaction of its own (denials, sign-in failures)."""
        with self.uow_factory() as uow:
            self.trail.append(uow, entry)
            uow.commit()

    def checkpoint(self) -> None:
        with self.uow_factory() as uow:
            if self.trail.checkpoint(uow) is not None:
                uow.commit()
