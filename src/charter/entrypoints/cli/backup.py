"""``charter backup`` and ``charter restore``: run on the server's host with its settings (like
``charter init``), not through the API — a restore needs an empty database that no server uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

from charter.config import Settings
from charter.entrypoints.cli.output import console, errors, show
from charter.entrypoints.cli.state import state_of


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int | None], None]]:
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=errors, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def backup_command(
    ctx: typer.Context,
    settings: Settings,
    out: Path,
    artifacts: bool,
) -> None:
    from charter.bootstrap import backup

    with _progress() as progress:
        summary = backup(settings, out, artifacts=artifacts, progress=progress)
    data = summary.to_dict()
    show(state_of(ctx).output, data, lambda: console.print(
        f"Wrote [bold]{summary.path}[/] ({summary.bytes:,} bytes in {summary.seconds:.1f} s): "
        f"{data['rows']:,} rows of {data['tables']} tables at schema {summary.revision} "
        f"({summary.dialect}), {summary.blobs:,} blobs, audit head {summary.audit_head}."
        + ("" if artifacts else " No blobs (--no-artifacts): the artifact store keeps them.")))


def restore_command(ctx: typer.Context, settings: Settings, archive: Path) -> None:
    from charter.bootstrap import restore

    with _progress() as progress:
        summary = restore(settings, archive, progress=progress)
    data: dict[str, Any] = summary.to_dict()
    show(state_of(ctx).output, data, lambda: console.print(
        f"Restored {data['rows']:,} rows of {data['tables']} tables and {summary.blobs:,} blobs from "
        f"{archive} ({summary.from_dialect} -> {summary.into_dialect}) in {summary.seconds:.1f} s."
        + "".join(f"\n  {note}" for note in summary.notes)
        + "\nNext: charter server, then charter audit verify"))


OutFile = Annotated[Path, typer.Option("--out", help="The backup file to write (replaced atomically).")]
Artifacts = Annotated[bool, typer.Option("--artifacts/--no-artifacts",
                                         help="Also copy every account's blobs into the backup.")]
ArchiveFile = Annotated[Path, typer.Argument(help="A file written by charter backup.", exists=True,
                                             dir_okay=False)]
