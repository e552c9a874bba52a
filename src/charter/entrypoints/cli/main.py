"""``charter``: the command line. Remote commands go through the SDK; init, server and demo run here."""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from charter.client import models as m
from charter.client.client import Client
from charter.config import Settings
from charter.entrypoints.cli import account_requests as account_requests_cli
from charter.entrypoints.cli import apply_products
from charter.entrypoints.cli import backup as backup_cli
from charter.entrypoints.cli import cards as cards_cli
from charter.entrypoints.cli import catalog as catalog_cli
from charter.entrypoints.cli import datasets as datasets_cli
from charter.entrypoints.cli import deployments as deployments_cli
from charter.entrypoints.cli import endpoints as endpoints_cli
from charter.entrypoints.cli import events as events_cli
from charter.entrypoints.cli import pipelines as pipelines_cli
from charter.entrypoints.cli import projects as projects_cli
from charter.entrypoints.cli import registry as registry_cli
from charter.entrypoints.cli.demo import GoldenPath
from charter.entrypoints.cli.output import Format, console, errors, show, table, when
from charter.entrypoints.cli.profiles import Profile, SessionInfo
from charter.entrypoints.cli.state import State
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import CharterError, ValidationError
from charter.examples import acme_document

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Charter: govern the machine-learning lifecycle across isolated accounts.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (shown once, stored hashed).")
accounts_app = typer.Typer(no_args_is_help=True, help="Accounts of the organization.")
principals_app = typer.Typer(no_args_is_help=True, help="People and service principals.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")
org_app = typer.Typer(no_args_is_help=True, help="The organization.")
policies_app = typer.Typer(no_args_is_help=True, help="Cedar policies in force.")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(cards_cli.app, name="cards")
app.add_typer(events_cli.app, name="events")
app.add_typer(datasets_cli.app, name="data")
app.add_typer(catalog_cli.app, name="catalog")
app.add_typer(projects_cli.projects_app, name="projects")
app.add_typer(projects_cli.workspaces_app, name="workspaces")
app.add_typer(pipelines_cli.app, name="pipelines")
app.add_typer(endpoints_cli.app, name="endpoints")
app.add_typer(deployments_cli.app, name="deployments")
for sub, name in ((tokens_app, "tokens"), (accounts_app, "accounts"), (principals_app, "principals"),
                  (audit_app, "audit"), (org_app, "org"), (policies_app, "policies")):
    app.add_typer(sub, name=name)


@app.callback()
def main(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(envvar="CHARTER_PROFILE", help="Profile to use.")] = None,
    server: Annotated[str | None, typer.Option(envvar="CHARTER_SERVER", help="Server URL (overrides the profile).")] = None,
    token: Annotated[str | None, typer.Option(envvar="CHARTER_TOKEN", help="Bearer token (overrides the profile).")] = None,
    output: Annotated[Format, typer.Option("--output", "-o", help="table or json.")] = Format.TABLE,
) -> None:
    ctx.obj = State(profile, server, token, output)


def parse_duration(text: str) -> int:
    """'30d', '12h', '90m', '45s' or plain seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match:
        raise ValidationError(f"invalid duration {text!r}: use e.g. 30d, 12h, 90m or 3600", value=text)
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return int(match.group(1)) * unit


def _settings(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    return Settings(**values)


DataDir = Annotated[Path | None, typer.Option(help="Data directory (default: CHARTER_DATA_DIR or ~/.local/share/charter).")]
DatabaseUrl = Annotated[str | None, typer.Option(help="Database URL (default: SQLite in the data directory).")]


# --- local: init, server, demo ---------------------------------------------------------------

@app.command()
def init(
    ctx: typer.Context,
    org: Annotated[str, typer.Option(help="Name of the organization.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create the organization and print the admin token, once."""
    from charter.bootstrap import bootstrap
    from charter.domain.commands import InitOrg
    from charter.domain.identity import Identity

    platform = bootstrap(_settings(data_dir, database_url))
    try:
        result = platform.bus.handle(InitOrg(org), Identity("system", "charter-init"))
    finally:
        platform.close()
    data = {"organization": result.org.name, "principal": result.admin, "token": result.bearer,
            "expires_at": result.token.expires_at}
    show(_state(ctx).output, data, lambda: console.print(
        f"Created organization [bold]{result.org.name}[/] with principal [bold]{result.admin}[/] "
        f"(org-admin in the management account).\n\nAdmin token (shown once, store it now):\n\n"
        f"  {result.bearer}\n\nNext: charter server, then charter login --server URL --token TOKEN"))


@app.command()
def backup(
    ctx: typer.Context,
    out: backup_cli.OutFile,
    artifacts: backup_cli.Artifacts = True,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Back up the database and the artifact store into one file (a consistent snapshot)."""
    backup_cli.backup_command(ctx, _settings(data_dir, database_url), out, artifacts)


@app.command()
def restore(
    ctx: typer.Context,
    archive: backup_cli.ArchiveFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Restore a backup into an empty database (SQLite or PostgreSQL) and artifact store."""
    backup_cli.restore_command(ctx, _settings(data_dir, database_url), archive)


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the control plane: REST API (OpenAPI at /openapi.json) and schedulers."""
    from charter.bootstrap import bootstrap
    from charter.entrypoints.server import serve

    platform = bootstrap(_settings(data_dir, database_url, host=host, port=port))
    serve(platform)


@app.command()
def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run an event dispatcher alone (as many as needed, beside the servers): SIGTERM stops it."""
    import signal
    import threading

    from charter.bootstrap import bootstrap

    platform = bootstrap(_settings(data_dir, database_url))
    stop = threading.Event()
    def stopping(*_: object) -> None:
        stop.set()
        platform.dispatcher.wake()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stopping)
    console.print("charter worker: delivering events (SIGTERM stops it)", highlight=False)
    try:
        platform.dispatcher.run_forever(stop)
    finally:
        platform.close()


@app.command()
def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Listen port (0 picks a free one).")] = 8750,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option(help="Where the demo keeps its state (wiped first).")] = None,
    exit_after_setup: Annotated[bool, typer.Option("--exit", help="Stop once the demo is set up.")] = False,
) -> None:
    """The main job: an embedded server with the example organization, its URL printed."""
    from charter.bootstrap import bootstrap
    from charter.domain.commands import InitOrg
    from charter.domain.identity import Identity
    from charter.entrypoints.server import BackgroundServer

    state = _state(ctx)
    directory = data_dir or state.settings.data_dir / "demo"
    if directory.exists():
        shutil.rmtree(directory)
    settings = Settings(data_dir=directory, host=host, port=port, database_url=None,
                        config_dir=state.settings.config_dir)
    document = acme_document()
    with console.status("Starting Charter …"):
        platform = bootstrap(settings)
        init_result = platform.bus.handle(InitOrg("acme"), Identity("system", "charter-demo"))
        background = BackgroundServer(platform, host, port)
        url = background.start()
    try:
        with Client(url, init_result.bearer) as client:
            applied = client.apply(document, filename="examples/acme/charter.yaml")
            accounts = list(client.accounts())
            principals = list(client.principals())
            if state.output != "json":
                _print_demo(url, applied, accounts, principals, init_result.bearer)
            path = GoldenPath(url, client, _say if state.output != "json" else _quiet,
                              console.status if state.output != "json" else _no_status,
                              platform.bus.checkpoint)
            walked = path.walk()
            verified = client.audit_verify()
        store = state.store()
        store.profiles["demo"] = Profile(url, init_result.bearer)
        for name, token in path.tokens.items():
            store.profiles[f"demo-{name}"] = Profile(url, token)
        store.save()
        summary = {"url": url, "openapi": f"{url}/openapi.json", "organization": "acme",
                   "accounts": [a.name for a in accounts], "principals": [p.name for p in principals],
                   "changes_applied": len(applied.changes), "admin_token": init_result.bearer,
                   "profile": "demo", "audit_ok": verified.ok, "data_dir": str(directory),
                   "persona_tokens": path.tokens, "golden_path": walked.steps, **walked.facts}
        show(state.output, summary, lambda: _print_demo_end(url, path.tokens))
        sys.stdout.flush()
        if not exit_after_setup:
            while background.thread.is_alive():
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        background.stop()
        platform.close()


def _print_demo(url: str, applied: m.ApplyOut, accounts: list[m.AccountOut],
                principals: list[m.PrincipalOut], token: str) -> None:
    say = console.print
    say(f"\n[bold green]Charter is running[/] at [bold]{url}[/]", soft_wrap=True)
    say(f"Web console: {url}/ (sign in with a token below) · OpenAPI: {url}/openapi.json\n", soft_wrap=True)
    say(f"Applied examples/acme/charter.yaml: {len(applied.changes)} changes.")
    table("Accounts", ["name", "kind", "stage", "ou"], [(a.name, a.kind, a.stage, a.ou) for a in accounts])
    say(f"Principals: {', '.join(p.name for p in principals)}", soft_wrap=True)
    say(f"\nAdmin token (saved as profile [bold]demo[/]): {token}", soft_wrap=True, highlight=False)
    say("\n[bold]The golden path[/], each persona with their own token:")


def _print_demo_end(url: str, tokens: dict[str, str]) -> None:
    me = sys.argv[0] if "/" in sys.argv[0] else "charter"  # how this command was called
    console.print(f"\nCharter is running at [bold]{url}[/]; the web console is at {url}/.", soft_wrap=True)
    console.print("The personas' tokens (sign in to the console with one; each is also the CLI profile "
                  "demo-NAME):", soft_wrap=True)
    for name, token in tokens.items():
        console.print(f"  {name:<7} {token}", soft_wrap=True, highlight=False)
    console.print(f"  {me} --profile demo-grace deployments show churn-deploy --account ml-shared-services\n"
                  f"  {me} --profile demo-grace endpoints invoke churn-deploy --account ml-prod --data "
                  "'{\"instances\": [[...30 numbers...]]}'", soft_wrap=True, highlight=False)
    console.print("Try also:", soft_wrap=True)
    console.print(f"  {me} --profile demo registry packages churn-ml-dev --account ml-shared-services\n"
                  f"  {me} --profile demo cards show churn-ml-dev --account ml-shared-services\n"
                  f"  {me} --profile demo audit list --resource "
                  "crn:charter:ml-shared-services:registry:model-package/churn-ml-dev/1\n"
                  f"  {me} --profile demo audit verify", soft_wrap=True, highlight=False)
    console.print("Press Ctrl+C to stop.")


def _say(text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False)


def _quiet(text: str) -> None:
    pass


@contextlib.contextmanager
def _no_status(text: str) -> Iterator[None]:
    yield


# --- identity ----------------------------------------------------------------------------------

@app.command()
def login(
    ctx: typer.Context,
    server: Annotated[str, typer.Option("--server", help="Server URL.")],
    token: Annotated[str, typer.Option("--token", help="API token.", prompt=True, hide_input=True)],
    profile: Annotated[str, typer.Option("--profile", help="Profile name.")] = "default",
) -> None:
    """Check a token against a server and save it as a named profile (the default from now on)."""
    with Client(server, token) as client:
        me = client.whoami()
    store = _state(ctx).store()
    store.profiles[profile] = Profile(server, token)
    store.default = profile
    store.save()
    show(_state(ctx).output, me, lambda: console.print(
        f"Logged in to {server} as [bold]{me.principal.name}[/] (profile {profile})."))


@app.command()
def whoami(ctx: typer.Context) -> None:
    """Who the current credentials are, and the roles they hold."""
    with _state(ctx).client() as client:
        me = client.whoami()

    def render() -> None:
        console.print(f"[bold]{me.principal.name}[/] ({me.principal.kind}) via {me.via}")
        if me.session:
            console.print(f"Session: {me.session.role} in {me.session.account}, expires {when(me.session.expires_at)}")
        table("Role bindings", ["account", "roles"], [(a, ", ".join(r)) for a, r in me.bindings.items()])

    show(_state(ctx).output, me, render)


@app.command("assume-role")
def assume_role(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Account to act in.")] = None,
    role: Annotated[str | None, typer.Option(help="Role to act as.")] = None,
    duration: Annotated[str | None, typer.Option(help="Session length, e.g. 1h (default: the server's).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Drop the current session.")] = False,
) -> None:
    """Act as one role in one account: an expiring session kept in the profile."""
    state = _state(ctx)
    store = state.store()
    name, profile = store.get(state.profile)
    if clear:
        profile.session = None
        store.save()
        console.print("Session dropped; acting with the profile's token again.")
        return
    if not account or not role:
        raise ValidationError("give --account and --role (or --clear)")
    seconds = parse_duration(duration) if duration else None
    with Client(state.server or profile.server, state.token or profile.token) as client:
        issued = client.assume_role(account, role, duration_seconds=seconds)
    profile.session = SessionInfo(issued.secret, account, role, issued.session.expires_at.isoformat())
    store.save()
    show(state.output, issued.session, lambda: console.print(
        f"Acting as [bold]{role}[/] in [bold]{account}[/] until {when(issued.session.expires_at)} "
        f"(profile {name})."))


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    principal: Annotated[str, typer.Option(help="Whose token.")],
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d (default: the longest allowed).")] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create an API token for a principal; the secret is printed once."""
    with _state(ctx).client() as client:
        issued = client.create_token(principal, expires_in_seconds=parse_duration(expires) if expires else None,
                                     description=description)
    show(_state(ctx).output, issued, lambda: console.print(
        f"Token {issued.token.id} for {principal}, expires {when(issued.token.expires_at)}.\n"
        f"Secret (shown once):\n\n  {issued.secret}\n"))


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Only this principal's tokens.")] = None,
) -> None:
    """List tokens (never their secrets)."""
    with _state(ctx).client() as client:
        items = list(client.tokens(principal))
    show(_state(ctx).output, items, lambda: table(
        "Tokens", ["id", "principal", "state", "expires", "created by", "description"],
        [(t.id, t.principal, t.state, when(t.expires_at), t.created_by, t.description) for t in items]))


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id.")]) -> None:
    """Revoke a token at once, with the sessions made from it."""
    with _state(ctx).client() as client:
        token = client.revoke_token(token_id)
    show(_state(ctx).output, token, lambda: console.print(f"Revoked token {token.id} of {token.principal}."))


# --- organization ------------------------------------------------------------------------------

@app.command()
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="charter.yaml to apply.")],
    plan: Annotated[bool, typer.Option("--plan", help="Show the changes without making them.")] = False,
    skip_products: Annotated[bool, typer.Option(
        "--skip-products", help="Apply the document only; publish none of its product folders.")] = False,
) -> None:
    """Create or update the organization from a file, in one transaction; then publish the product
    folders it declares (relative to the file) that are not published yet."""
    try:
        document = file.read_text()
    except OSError as error:
        raise ValidationError(f"cannot read {file}: {error.strerror}", file=str(file)) from None
    with _state(ctx).client() as client:
        if not skip_products and apply_products.declares_products(document):
            if not plan:  # the server names what is wrong with the document before the folders are checked
                client.apply(document, filename=str(file), plan=True)
            apply_products.check_folders(file, document)
        result = client.apply(document, filename=str(file), plan=plan)
        products = [] if skip_products else apply_products.publish_declared(client, file, document, plan=plan)
    changed = [p for p in products if p.outcome != "unchanged"]

    def render() -> None:
        if not result.changes:
            console.print("No changes: the organization already matches the file.")
        for change in result.changes:
            colour = {"create": "green", "update": "yellow", "delete": "red"}[change.action]
            console.print(f"[{colour}]{escape(change.summary)}[/]", highlight=False)
        for product in products:
            colour = "dim" if product.outcome == "unchanged" else "green"
            console.print(f"[{colour}]{escape(product.describe())}[/]", highlight=False)
        if result.changes or changed:
            verb = "Applied" if result.applied else "Plan:"
            console.print(f"\n{verb} {len(result.changes)} change(s)"
                          + (f", {len(changed)} product(s) {'published' if result.applied else 'to publish'}"
                             if products else "")
                          + ("" if result.applied else "; nothing was changed."))

    show(_state(ctx).output, {**result.model_dump(mode="json"), "products": [p.to_json() for p in products]},
         render)


@org_app.command("show")
def org_show(ctx: typer.Context) -> None:
    """The organization as a tree of units and accounts."""
    from rich.tree import Tree

    with _state(ctx).client() as client:
        org = client.org()

    def render() -> None:
        tree = Tree(f"[bold]{org.name}[/]  {org.crn}")
        nodes: dict[str | None, Any] = {None: tree}
        pending = list(org.units)
        while pending:
            progressed = False
            for unit in list(pending):
                if unit.parent in nodes:
                    nodes[unit.name] = nodes[unit.parent].add(f"[cyan]{unit.name}[/] (OU)")
                    pending.remove(unit)
                    progressed = True
            if not progressed:
                break
        for account in org.accounts:
            stage = f", {account.stage}" if account.stage else ""
            nodes.get(account.ou, tree).add(f"{account.name} [dim]({account.kind}{stage})[/]")
        console.print(tree)

    show(_state(ctx).output, org, render)


account_requests_cli.register(accounts_app)


@accounts_app.command("list")
def accounts_list(ctx: typer.Context) -> None:
    """All accounts."""
    with _state(ctx).client() as client:
        items = list(client.accounts())
    show(_state(ctx).output, items, lambda: table(
        "Accounts", ["name", "kind", "stage", "ou", "crn"],
        [(a.name, a.kind, a.stage, a.ou, a.crn) for a in items]))


@accounts_app.command("show")
def accounts_show(ctx: typer.Context, name: str) -> None:
    """One account and its role bindings."""
    with _state(ctx).client() as client:
        account = client.account(name)
        bindings = client.role_bindings(name)

    def render() -> None:
        console.print(f"[bold]{escape(account.name)}[/] {account.kind} {account.stage or ''} "
                      f"ou={account.ou or '-'}  {account.crn}", highlight=False)
        table("Role bindings", ["principal", "role"], [(b.principal, b.role) for b in bindings])

    show(_state(ctx).output, {"account": account.model_dump(mode="json"),
                              "role_bindings": [b.model_dump(mode="json") for b in bindings]}, render)


@principals_app.command("list")
def principals_list(ctx: typer.Context) -> None:
    """All principals."""
    with _state(ctx).client() as client:
        items = list(client.principals())
    show(_state(ctx).output, items, lambda: table(
        "Principals", ["name", "kind", "display name", "email"],
        [(p.name, p.kind, p.display_name, p.email) for p in items]))


@principals_app.command("show")
def principals_show(ctx: typer.Context, name: str) -> None:
    """One principal and the roles it holds."""
    with _state(ctx).client() as client:
        p = client.principal(name)

    def render() -> None:
        console.print(f"[bold]{escape(p.name)}[/] ({p.kind}) {escape(p.display_name)} {escape(p.email)}",
                      highlight=False)
        table("Role bindings", ["account", "roles"], [(a, ", ".join(r)) for a, r in p.bindings.items()])

    show(_state(ctx).output, p, render)


@policies_app.command("list")
def policies_list(ctx: typer.Context, full: Annotated[bool, typer.Option(help="Print the Cedar text.")] = False) -> None:
    """The default policy set and the organization's own policies."""
    with _state(ctx).client() as client:
        view = client.policies()

    def render() -> None:
        if full:
            for p in view.policies:
                console.print(f"[bold]// {p.id}[/] ({p.source})\n{p.text}\n", highlight=False)
        else:
            table("Policies", ["id", "source", "effect"],
                  [(p.id, p.source, _effect(p.text)) for p in view.policies])
        table("Roles", ["name", "builtin", "description"], [(r.name, r.builtin, r.description) for r in view.roles])

    show(_state(ctx).output, view, render)


def _effect(text: str) -> str:
    match = re.search(r"^\s*(permit|forbid)\b", text, re.MULTILINE)
    return match.group(1) if match else "?"


# --- audit -------------------------------------------------------------------------------------

def _filters(actor: str | None, account: str | None, resource: str | None, action: str | None,
             since: datetime | None, until: datetime | None) -> dict[str, Any]:
    return {"actor": actor, "account": account, "resource": resource, "action": action,
            "since": since, "until": until}


Actor = Annotated[str | None, typer.Option(help="Only this principal's records.")]
AccountOpt = Annotated[str | None, typer.Option("--account", help="Only this account's records.")]
ResourceOpt = Annotated[str | None, typer.Option(help="Only records about this CRN.")]
ActionOpt = Annotated[str | None, typer.Option(help="Only this action, e.g. iam:CreateToken.")]
Since = Annotated[datetime | None, typer.Option(help="From this time (ISO 8601, UTC).")]
Until = Annotated[datetime | None, typer.Option(help="Before this time (ISO 8601, UTC).")]


@audit_app.command("list")
def audit_list(ctx: typer.Context, actor: Actor = None, account: AccountOpt = None, resource: ResourceOpt = None,
               action: ActionOpt = None, since: Since = None, until: Until = None,
               limit: Annotated[int, typer.Option(help="At most this many records.")] = 100) -> None:
    """Audit records, oldest first, filtered."""
    with _state(ctx).client() as client:
        records = []
        for record in client.audit_records(**_filters(actor, account, resource, action, _utc(since), _utc(until))):
            records.append(record)
            if len(records) >= limit:
                break
    show(_state(ctx).output, records, lambda: table(
        "Audit trail", ["seq", "time", "actor", "account", "action", "resource", "outcome", "policy"],
        [(r.seq, when(r.time), r.actor, r.account, r.action, r.resource, r.outcome, r.policy) for r in records]))


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Check the hash chain and the signed checkpoints; exit 1 naming the first bad record."""
    with _state(ctx).client() as client:
        result = client.audit_verify()
    show(_state(ctx).output, result, lambda: console.print(
        f"[green]The audit trail verifies:[/] {result.records} records, {result.checkpoints} signed checkpoints."
        if result.ok else
        f"[red]The audit trail does NOT verify:[/] first bad record {result.first_bad_seq}: {result.reason}"))
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(ctx: typer.Context, out: Annotated[Path | None, typer.Option("--out", help="File to write (default: stdout).")] = None,
                 actor: Actor = None, account: AccountOpt = None, resource: ResourceOpt = None,
                 action: ActionOpt = None, since: Since = None, until: Until = None) -> None:
    """Write the matching records as JSON lines."""
    with _state(ctx).client() as client:
        lines = client.audit_export(**_filters(actor, account, resource, action, _utc(since), _utc(until)))
        if out is None:
            for line in lines:
                sys.stdout.buffer.write(line)
            return
        tmp = out.with_name(out.name + ".part")
        count = 0
        with tmp.open("wb") as f:
            for line in lines:
                f.write(line)
                count += 1
        tmp.replace(out)
    errors.print(f"Wrote {count} records to {out}.")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@app.command("settings")
def settings_cmd(ctx: typer.Context) -> None:
    """Every server setting, its environment variable and its current value."""
    settings = Settings()
    rows = [(f"CHARTER_{name.upper()}", getattr(settings, name), field.description or "")
            for name, field in Settings.model_fields.items()]
    show(_state(ctx).output, {r[0]: str(r[1]) for r in rows},
         lambda: table("Settings", ["variable", "value", "meaning"], rows))


def hoist_output_option(argv: list[str]) -> list[str]:
    """Accept ``--output json`` after the subcommand too (``charter whoami -o json``), as users type it.

    Typer only knows the option on the main callback, so it is moved in front of the subcommand.
    """
    rest, hoisted, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--output", "-o") and i + 1 < len(argv):
            hoisted += [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--output="):
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def run() -> None:
    try:
        app(args=hoist_output_option(sys.argv[1:]), prog_name="charter")
    except CharterError as error:
        problems = error.details.get("problems")
        headline = (f"{error.details['file']} was not applied" if problems and "file" in error.details
                    else error.message)
        errors.print(f"[red]error[/] ({error.type_name}): {escape(headline)}", highlight=False)
        if "policy" in error.details:
            errors.print(f"  policy: {error.details['policy']}", highlight=False, markup=False)
        for problem in problems if isinstance(problems, list) else []:
            where = f"{error.details['file']}: " if "file" in error.details else ""
            errors.print(f"  - {where}{problem.get('field')}: {problem.get('reason')}", highlight=False,
                         markup=False)
        sys.exit(1)
