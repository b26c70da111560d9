"""`codexops deploy | promote | rollback | sync | diff | history`: shipping releases between stacks on
evidence, with each stack's desired state committed in its Pulumi.<stack>.yaml.

Exit codes: 0 done (or in sync), 1 refused, rolled back or differs, 2 could not run (no backend, no
release, bad input).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from infra.root import ROOT

LocalOption = Annotated[bool, typer.Option("--local", help="use the local backend (else CODEX_BACKEND, else auto)")]
BreakGlassOption = Annotated[
    str | None,
    typer.Option(
        "--break-glass",
        metavar="REASON",
        help="emergency only: run the release without the evidence the stack requires, for REASON "
        "(written into the stack file, shown by history, reported by diff until a promotion replaces it)",
    ),
]
ReportsOption = Annotated[
    Path, typer.Option(envvar="CODEX_REPORTS_DIR", help="gate reports go to REPORTS/<stack>-<timestamp>/")
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Every expected failure becomes its message and exit code, never a traceback."""
    from subprocess import CalledProcessError

    from codexops.backend_choice import BackendUnavailable
    from codexops.localenv import LocalEnvError
    from codexops.releases.admission import NotAdmitted
    from codexops.releases.backend import ReleaseTampered
    from codexops.releases.gitops import GitError
    from codexops.releases.lock import StackBusy
    from codexops.releases.model import AmbiguousRelease, ReleaseNotFound
    from codexops.releases.named import ReleaseMissing
    from codexops.releases.rollback import NothingToRollBackTo
    from codexops.releases.shipping import Refused

    try:
        yield
    except (Refused, NotAdmitted, StackBusy, NothingToRollBackTo, AmbiguousRelease, ReleaseTampered) as exc:
        raise _fail(f"refused: {exc}", 1) from None
    except (BackendUnavailable, ReleaseNotFound, ReleaseMissing, GitError) as exc:
        raise _fail(f"could not run: {exc}", 2) from None
    except (ValueError, LocalEnvError, CalledProcessError) as exc:  # StackFileError is a ValueError
        raise _fail(f"could not run: {exc}", 2) from None


def _finish(exit_code: int, verdict: str, message: str) -> None:
    colour = "green" if exit_code == 0 else "red"
    typer.secho(f"==> {verdict}: {message}", fg=colour, bold=True)
    raise typer.Exit(exit_code)


def deploy(
    stack: Annotated[str, typer.Argument(help="the stack to deploy to")],
    release: Annotated[str, typer.Option(help="release id, digest prefix or 'latest'")] = "latest",
    break_glass: BreakGlassOption = None,
    local: LocalOption = False,
    reports: ReportsOption = ROOT / "reports",
) -> None:
    """Commit STACK's file naming a release, deploy it (rolling), verify it with the checklist and a smoke
    load; on FAIL roll back and commit the revert. Refused where the stack's spec requires evidence
    (production: `codexops promote`), unless --break-glass says why."""
    from codexops.releases.lock import stack_lock
    from codexops.releases.model import load_release
    from codexops.releases.promote import change
    from codexops.releases.selection import select_backend

    with _errors():
        chosen = load_release(release)
        backend = select_backend(local)
        with stack_lock(stack, f"deploy {chosen.id}"):
            result = change(
                backend, stack, chosen, kind="deploy", reports=reports, say=typer.echo, break_glass=break_glass
            )
    _finish(result.exit_code, result.verdict, result.message)


def promote(
    source: Annotated[str, typer.Option("--from", help="the stack whose gated release is promoted")],
    destination: Annotated[str, typer.Option("--to", help="the stack that receives it")],
    accept_warnings: Annotated[bool, typer.Option(help="a WARN gate is enough evidence")] = False,
    max_age: Annotated[str, typer.Option(help="the newest gate must be younger than this (24h, 90m, 2d)")] = "24h",
    commit_only: Annotated[
        bool, typer.Option(help="stop after the commit (CI: its pull request is the approval; merging syncs)")
    ] = False,
    local: LocalOption = False,
    reports: ReportsOption = ROOT / "reports",
) -> None:
    """Promote the release serving SOURCE to DESTINATION if its latest gate there allows it: commit
    DESTINATION's file naming it, sync, verify; on FAIL commit the revert and roll back."""
    from codexops.releases import promote as promotion
    from codexops.releases.lock import stack_lock
    from codexops.releases.selection import select_backend

    with _errors():
        if source == destination:
            raise ValueError("--from and --to name the same stack")
        bound = promotion.parse_age(max_age)
        backend = select_backend(local)
        with stack_lock(destination, f"promote from {source}"):
            result = promotion.promote(
                backend,
                source,
                destination,
                now=datetime.now(UTC),
                max_age=bound,
                accept_warnings=accept_warnings,
                reports=reports,
                say=typer.echo,
                commit_only=commit_only,
            )
    _finish(result.exit_code, result.verdict, result.message)


def rollback(
    stack: Annotated[str, typer.Argument(help="the stack to roll back")],
    to: Annotated[str | None, typer.Option(help="release id, digest prefix or version (default: the previous)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="restore a database backup without asking")] = False,
    break_glass: BreakGlassOption = None,
    local: LocalOption = False,
    reports: ReportsOption = ROOT / "reports",
) -> None:
    """Commit STACK's file back to its previous desired state (its git log) or --to, and sync: restores
    the database backup if the schema moved since; PASS only when the checklist passes afterwards. The
    target needs its evidence committed (or ran here by break-glass before, or --break-glass)."""
    from codexops.releases import rollback as rolling
    from codexops.releases.lock import stack_lock
    from codexops.releases.selection import select_backend
    from codexops.releases.shipping import roll_back

    with _errors():
        backend = select_backend(local)
        with stack_lock(stack, "rollback"):
            plan = rolling.plan(backend, stack, to, typer.echo, break_glass=break_glass)
            current = plan.current.id if plan.current else "nothing recorded"
            typer.echo(f"==> {stack}: {current} -> {plan.target.id}")
            if plan.backup is not None:
                _confirm_restore(plan.backup, yes)
            if plan.break_glass is not None:
                typer.secho(f"==> BREAK-GLASS: {plan.break_glass.reason} ({plan.break_glass.by})", fg="yellow")
            commit = rolling.commit_rollback(stack, plan.target, "rollback requested", plan.break_glass)
            typer.echo(f"==> committed {commit[:12]}: Pulumi.{stack}.yaml names {plan.target.id}")
            event = roll_back(backend, stack, plan.target, typer.echo, reason="rollback requested", reports=reports)
    code = 0 if event.verdict == "PASS" else 1
    _finish(code, "ROLLED BACK" if code == 0 else "FAIL", f"{stack} -> {event.release}: {event.detail}")


def sync(
    stack: Annotated[str, typer.Argument(help="the stack to bring to what its Pulumi.<stack>.yaml names")],
    yes: Annotated[bool, typer.Option("--yes", help="restore a database backup without asking")] = False,
    local: LocalOption = False,
    reports: ReportsOption = ROOT / "reports",
) -> None:
    """Make STACK run the release its committed file names (no-op when it does), verified like a deploy."""
    from codexops.releases import sync as syncing
    from codexops.releases.lock import stack_lock
    from codexops.releases.selection import select_backend

    with _errors():
        backend = select_backend(local)
        with stack_lock(stack, "sync"):
            code, verdict, message = syncing.sync(
                backend, stack, confirm=lambda backup: _confirm_restore(backup, yes), reports=reports, say=typer.echo
            )
    _finish(code, verdict, message)


def diff(
    stack: Annotated[str, typer.Argument(help="the stack to compare with its Pulumi.<stack>.yaml")],
    local: LocalOption = False,
) -> None:
    """Exit 0 when STACK serves what its file names, 1 with what differs."""
    from codexops.releases import sync as syncing
    from codexops.releases.selection import select_backend

    with _errors():
        drift = syncing.diff(select_backend(local), stack)
    _finish(drift.exit_code, "IN SYNC" if drift.exit_code == 0 else "DIFFERS", drift.message)


def _confirm_restore(backup: Path, yes: bool) -> None:
    if not backup.exists():
        raise _fail(f"could not run: the schema moved forward, but its backup {backup} is missing", 2)
    warning = f"The schema moved forward: {backup} will be restored, discarding every write made since."
    if yes:
        typer.echo(warning)
        return
    if not sys.stdin.isatty():
        raise _fail(f"refused: {warning} Run again with --yes to accept.", 1)
    if not typer.confirm(f"{warning} Continue?", default=False):
        raise _fail("refused: not confirmed", 1)


def history(
    stack: Annotated[str, typer.Argument(help="the stack whose history to print")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """STACK's desired-state commits (release, evidence digest, who, when: its file's git log) with every
    deploy, promotion, rollback and gate recorded here."""
    from codexops.releases import timeline

    with _errors():
        rows = timeline.merged(stack)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        typer.echo(f"no history for stack {stack} yet")
        return
    typer.echo(f"{'when':<20}  {'kind':<8}  {'release':<26}  {'verdict':<11}  {'who':<12}  report / detail")
    for row in rows:
        line = timeline.one_line  # every field is shown as one line: a crafted value cannot add a row
        colour = {"UNVERIFIED": "red", "BREAK-GLASS": "yellow"}.get(str(row["verdict"]))
        typer.secho(
            f"{line(row['at']):<20}  {line(row['kind']):<8}  {line(row['release'] or '-'):<26}  "
            f"{line(row['verdict']):<11}  {line(row['actor']):<12}  {line(timeline.note(row))}",
            fg=colour,
            bold=colour is not None,
        )


COMMANDS: tuple[Callable[..., None], ...] = (deploy, promote, rollback, sync, diff, history)


def register(cli: typer.Typer) -> None:
    for command in COMMANDS:
        cli.command()(command)
