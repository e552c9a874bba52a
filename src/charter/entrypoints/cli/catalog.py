"""``charter catalog``: portfolios, publishing templates (from a folder or a git ref), shares,
grants and what an account imports.

The server never reads a path of the caller's: ``publish`` packs the folder here (or runs ``git``
here) and uploads the archive.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from charter.client import models as m
from charter.entrypoints.cli.output import console, show, table, when
from charter.entrypoints.cli.registry import _account
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="The template catalog: portfolios, products, shares and grants.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
SKIPPED = {".git", "__pycache__", ".DS_Store"}


def pack_directory(root: Path, out: IO[bytes], *, required: str = "product.yaml") -> int:
    """Write ``root`` as a tar.gz of regular files, reproducibly (sorted, no owners or times).
    Links and special files are refused here, as the server would refuse them."""
    if not root.is_dir():
        raise ValidationError(f"no such folder: {root}", path=str(root))
    if not (root / required).is_file():
        raise ValidationError(f"{root} has no {required}", path=str(root))
    count = 0
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED)
            for name in sorted(filenames):
                if name in SKIPPED:
                    continue
                path = Path(dirpath) / name
                relative = path.relative_to(root).as_posix()
                if path.is_symlink() or not path.is_file():
                    raise ValidationError(f"{relative}: templates hold only regular files (no links)",
                                          path=relative)
                info = tarfile.TarInfo(relative)
                info.size = path.stat().st_size
                info.mode = 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
                count += 1
            for d in dirnames:
                if (Path(dirpath) / d).is_symlink():
                    raise ValidationError(f"{(Path(dirpath) / d).relative_to(root).as_posix()}: "
                                          "templates hold only regular files (no links)")
    return count


def _git(repo: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise ValidationError("publishing from git needs the git command on PATH")
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, check=False)


def git_archive(repo: str, ref: str, path: str | None, out: IO[bytes]) -> tuple[str, str]:
    """Resolve ``ref`` to its commit and write ``git archive COMMIT [PATH]``, gzipped, to ``out``.
    Returns the commit and the repository's URL (its origin, else the folder as a file: URL)."""
    if not ref or ref.startswith("-"):
        raise ValidationError(f"invalid git ref {ref!r}", field="ref")
    resolved = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        if _git(repo, "rev-parse", "--git-dir").returncode != 0:
            raise ValidationError(f"{repo} is not a git repository", field="git")
        raise ValidationError(f"no commit {ref!r} in {repo}: the ref does not exist", field="ref", ref=ref)
    commit = resolved.stdout.decode().strip()
    archived = _git(repo, "archive", "--format=tar", commit, *(["--", path] if path else []))
    if archived.returncode != 0:
        raise ValidationError(f"git archive {commit} {path or ''} failed: "
                              f"{archived.stderr.decode(errors='replace').strip()}", field="path")
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(archived.stdout)
    origin = _git(repo, "config", "--get", "remote.origin.url")
    url = origin.stdout.decode().strip() if origin.returncode == 0 else ""
    return commit, url or Path(repo).resolve().as_uri()


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


@app.command("portfolios")
def portfolios(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The portfolios of an account."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.portfolios(name))
    show(_state(ctx).output, items, lambda: table(
        f"Portfolios in {name}", ["name", "description", "provider", "crn"],
        [(p.name, p.description, p.provider, p.crn) for p in items]))


@app.command("portfolio")
def portfolio(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """One portfolio with its shares and grants."""
    with _state(ctx).client() as client:
        p = client.portfolio(_account(ctx, account), name)

    def render() -> None:
        console.print(f"[bold]{escape(p.crn)}[/]  {escape(p.description)}", highlight=False)
        table("Shared with", ["target"], [(s.target,) for s in p.shares])
        table("Granted to roles", ["pattern"], [(g.pattern,) for g in p.grants])

    show(_state(ctx).output, p, render)


@app.command("create-portfolio")
def create_portfolio(ctx: typer.Context, name: str, account: AccountOpt = None,
                     description: Annotated[str, typer.Option(help="What its products are for.")] = "",
                     provider: Annotated[str, typer.Option(help="Who maintains it.")] = "") -> None:
    """Create a portfolio (platform engineers, in the shared-services account)."""
    with _state(ctx).client() as client:
        p = client.create_portfolio(_account(ctx, account), name, description=description, provider=provider)
    show(_state(ctx).output, p, lambda: console.print(f"Created {p.crn}", highlight=False))


@app.command("products")
def products(ctx: typer.Context, account: AccountOpt = None,
             portfolio: Annotated[str | None, typer.Option(help="Only this portfolio's.")] = None) -> None:
    """The products of an account."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.products(name, portfolio=portfolio))
    show(_state(ctx).output, items, lambda: table(
        f"Products in {name}", ["name", "kind", "portfolio", "latest", "description"],
        [(p.name, p.kind, p.portfolio, p.latest_version, p.description) for p in items]))


@app.command("versions")
def versions(ctx: typer.Context, product: str, account: AccountOpt = None) -> None:
    """The versions of a product, with where each came from."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.product_versions(name, product))
    show(_state(ctx).output, items, lambda: table(
        f"{product} in {name}", ["version", "files", "source", "commit", "published by", "published"],
        [(v.version, len(v.files), v.source.repository or v.source.kind, (v.source.commit or "")[:12],
          v.published_by, when(v.published_at)) for v in items]))


@app.command("show")
def show_version(ctx: typer.Context,
                 ref: Annotated[str, typer.Argument(help="PRODUCT/VERSION, or PRODUCT for its latest")],
                 account: AccountOpt = None) -> None:
    """One product version: its parameters, what it provisions and its files."""
    product, _, number = ref.partition("/")
    if number and not number.isdigit():
        raise ValidationError(f"{ref!r}: write PRODUCT/VERSION, e.g. train-from-dataset/2", value=ref)
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        version = int(number) if number else client.product(name, product).latest_version
        v = client.product_version(name, product, version)

    def render() -> None:
        console.print(f"[bold]{escape(v.crn)}[/]  {v.kind}  {escape(v.description)}", highlight=False)
        properties = v.parameters.get("properties", {})
        required = set(v.parameters.get("required", []))
        table("Parameters", ["name", "type", "required", "default", "description"], [
            (k, s.get("type", ""), "yes" if k in required else "", s.get("default", ""), s.get("description", ""))
            for k, s in properties.items()])
        table("Provisions", ["what"], [(k,) for k in v.provisions])
        table("Files", ["path", "size", "sha256"], [(f.path, f.size, f.sha256) for f in v.files])

    show(_state(ctx).output, v, render)


@app.command("download")
def download(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="PRODUCT/VERSION")],
             path: Annotated[str, typer.Argument(help="The file's path in the product")],
             out: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
             account: AccountOpt = None) -> None:
    """One file of a product version."""
    product, _, number = ref.partition("/")
    if not number.isdigit():
        raise ValidationError(f"{ref!r}: write PRODUCT/VERSION", value=ref)
    with _state(ctx).client() as client:
        chunks = client.download_product_file(_account(ctx, account), product, int(number), path)
        if out is None:
            for chunk in chunks:
                typer.echo(chunk, nl=False)
            return
        with out.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)


@app.command("publish")
def publish(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Argument(help="The template folder (product.yaml at its root).")] = None,
    portfolio: Annotated[str, typer.Option(help="The portfolio to publish into.")] = "",
    account: AccountOpt = None,
    git: Annotated[str | None, typer.Option("--git", help="A local git repository to publish from.")] = None,
    ref: Annotated[str | None, typer.Option(help="With --git: the branch, tag or commit.")] = None,
    path: Annotated[str | None, typer.Option(help="With --git: the template's folder in the repository.")] = None,
) -> None:
    """Publish a template folder, or a folder of a git repository at a ref, as a new product version."""
    if not portfolio:
        raise ValidationError("give --portfolio", field="portfolio")
    if (directory is None) == (git is None):
        raise ValidationError("give a template folder, or --git REPO --ref REF [--path SUB]")
    if git is None and (ref or path):
        raise ValidationError("--ref and --path go with --git")
    if git is not None and not ref:
        raise ValidationError("--git needs --ref (a branch, tag or commit)", field="ref")
    name = _account(ctx, account)
    repository = commit = sub = None
    with tempfile.TemporaryFile() as archive:
        if git is not None:
            sub = path.strip("/") if path else None
            commit, repository = git_archive(git, str(ref), sub, archive)
            label = f"{git}@{ref}"
        else:
            assert directory is not None
            pack_directory(directory, archive)
            label = str(directory)
        size = archive.tell()
        archive.seek(0)
        with _state(ctx).client() as client:
            with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), console=console, transient=True) as progress:
                task = progress.add_task(f"uploading {label}", total=size)
                reader = _Counting(archive, lambda n: progress.advance(task, n))
                version = client.publish(name, portfolio, reader, repository=repository,  # type: ignore[arg-type]
                                         ref=ref if git else None, commit=commit, path=sub)
    show(_state(ctx).output, version, lambda: console.print(
        f"Published {version.crn} ({len(version.files)} files"
        + (f", commit {version.source.commit[:12]}" if version.source.commit else "") + ")", highlight=False))


class _Counting(io.RawIOBase):
    """A reader that reports how many bytes were read, for the progress bar."""

    def __init__(self, inner: IO[bytes], advance: Any) -> None:
        self._inner, self._advance = inner, advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._advance(len(data))
        return data


def _targets(ou: list[str] | None, to_account: list[str] | None) -> list[str]:
    targets = [f"ou:{u.removeprefix('ou:')}" for u in ou or []] + list(to_account or [])
    if not targets:
        raise ValidationError("give --ou UNIT or --to-account ACCOUNT (repeatable)", field="target")
    return targets


OuOpt = Annotated[list[str] | None, typer.Option("--ou", help="An organizational unit (and all below it), repeatable.")]
ToAccountOpt = Annotated[list[str] | None, typer.Option("--to-account", help="An account, repeatable.")]
RoleOpt = Annotated[list[str] | None, typer.Option("--role", help="A role name or pattern (*-data-scientist), repeatable.")]


@app.command("share")
def share(ctx: typer.Context, portfolio: str, ou: OuOpt = None, to_account: ToAccountOpt = None,
          grant_role: Annotated[list[str] | None, typer.Option(
              "--grant-role", help="Also grant these roles (names or patterns), repeatable.")] = None,
          account: AccountOpt = None) -> None:
    """Share a portfolio with OUs or accounts (and, with --grant-role, grant it to roles there)."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        shares = [client.share_portfolio(name, portfolio, t) for t in _targets(ou, to_account)]
        grants = [client.grant_portfolio(name, portfolio, r) for r in grant_role or []]
    show(_state(ctx).output, _dump({"shares": shares, "grants": grants}), lambda: console.print(
        f"Shared {portfolio} with {', '.join(s.target for s in shares)}"
        + (f"; granted to {', '.join(g.pattern for g in grants)}" if grants else ""), highlight=False))


@app.command("unshare")
def unshare(ctx: typer.Context, portfolio: str, ou: OuOpt = None, to_account: ToAccountOpt = None,
            account: AccountOpt = None) -> None:
    """Stop sharing a portfolio with OUs or accounts."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        shares = [client.unshare_portfolio(name, portfolio, t) for t in _targets(ou, to_account)]
    show(_state(ctx).output, shares, lambda: console.print(
        f"No longer shared {portfolio} with {', '.join(s.target for s in shares)}", highlight=False))


def _roles(role: list[str] | None) -> list[str]:
    if not role:
        raise ValidationError("give --role NAME_OR_PATTERN (repeatable)", field="role")
    return role


@app.command("grant")
def grant(ctx: typer.Context, portfolio: str, role: RoleOpt = None, account: AccountOpt = None) -> None:
    """Let roles (names or fnmatch patterns) in the accounts shared with launch the products."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        grants = [client.grant_portfolio(name, portfolio, r) for r in _roles(role)]
    show(_state(ctx).output, grants, lambda: console.print(
        f"Granted {portfolio} to {', '.join(g.pattern for g in grants)}", highlight=False))


@app.command("revoke-grant")
def revoke_grant(ctx: typer.Context, portfolio: str, role: RoleOpt = None, account: AccountOpt = None) -> None:
    """Withdraw grants of a portfolio."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        grants = [client.revoke_portfolio_grant(name, portfolio, r) for r in _roles(role)]
    show(_state(ctx).output, grants, lambda: console.print(
        f"Revoked {', '.join(g.pattern for g in grants)} on {portfolio}", highlight=False))


@app.command("imported")
def imported(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The portfolios shared with an account and the products your roles there may launch."""
    name = _account(ctx, account)
    with _state(ctx).client() as client:
        view: m.ImportedOut = client.imported(name)

    def render() -> None:
        roles = ", ".join(view.roles) or "none"
        if not view.portfolios:
            console.print(f"No portfolio is shared with {name}.", highlight=False)
            return
        rows = [(e.portfolio.name, e.portfolio.account, p.name, p.kind, p.latest_version, p.description)
                for e in view.portfolios for p in e.launchable]
        if not rows:
            console.print(f"Shared with {name}: {', '.join(e.portfolio.name for e in view.portfolios)}; "
                          f"nothing you may launch as {roles}.", highlight=False)
            return
        table(f"Launchable in {name} as {roles}", ["portfolio", "from", "product", "kind", "latest", "description"],
              rows)

    show(_state(ctx).output, view, render)
