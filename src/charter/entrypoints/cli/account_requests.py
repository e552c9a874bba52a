"""``charter accounts request|requests|approve|reject``: account vending from a blueprint."""

from __future__ import annotations

from typing import Annotated

import typer

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.state import state_of as _state


def _render_one(r: m.AccountRequestOut, verb: str) -> None:
    console.print(f"{verb} request {r.id}: account {r.account} ({r.kind}{'/' + r.stage if r.stage else ''}) "
                  f"in ou {r.ou} from blueprint {r.blueprint}: {r.status}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("request")
    def request(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="The new account's name.")],
        ou: Annotated[str, typer.Option("--ou", help="The organizational unit it joins.")],
        blueprint: Annotated[str, typer.Option("--blueprint", help="The blueprint giving its baseline.")],
        reason: Annotated[str, typer.Option("--reason", help="What the account is for.")],
        kind: Annotated[str, typer.Option("--kind", help="workload, shared-services or data-governance.")] = "workload",
        stage: Annotated[str | None, typer.Option("--stage", help="dev, test or prod (workload accounts).")] = None,
    ) -> None:
        """Ask for a new account (lead data scientists, ML engineers); the org admin decides."""
        with _state(ctx).client() as client:
            r = client.request_account(name, ou=ou, blueprint=blueprint, reason=reason, kind=kind, stage=stage)
        show(_state(ctx).output, r, lambda: _render_one(r, "Created"))

    @app.command("requests")
    def requests(
        ctx: typer.Context,
        status: Annotated[str | None, typer.Option("--status", help="Pending, Approved or Rejected.")] = None,
    ) -> None:
        """Account requests, oldest first."""
        with _state(ctx).client() as client:
            items = list(client.account_requests(status=status))
        show(_state(ctx).output, items, lambda: table(
            "Account requests", ["id", "account", "ou", "kind", "stage", "blueprint", "requested by", "status",
                                 "decided by", "created"],
            [(r.id, r.account, r.ou, r.kind, r.stage, r.blueprint, r.requested_by, r.status, r.decided_by,
              when(r.created_at)) for r in items]))

    @app.command("approve")
    def approve(
        ctx: typer.Context,
        request_id: Annotated[str, typer.Argument(help="The request's id.")],
        comment: Annotated[str, typer.Option("--comment", help="Why.")] = "",
    ) -> None:
        """Approve a request: the account is created with its blueprint's baseline (org admin)."""
        with _state(ctx).client() as client:
            r = client.approve_account_request(request_id, comment)
        show(_state(ctx).output, r, lambda: _render_one(r, "Approved"))

    @app.command("reject")
    def reject(
        ctx: typer.Context,
        request_id: Annotated[str, typer.Argument(help="The request's id.")],
        comment: Annotated[str, typer.Option("--comment", help="Why (required).")],
    ) -> None:
        """Reject a request, saying why (org admin)."""
        with _state(ctx).client() as client:
            r = client.reject_account_request(request_id, comment)
        show(_state(ctx).output, r, lambda: _render_one(r, "Rejected"))
