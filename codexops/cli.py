"""The `codexops` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from app.config import ConfigError, Settings
from codexops.release_cli import register as register_release_commands
from infra.spec import EnvironmentSpec

ROOT = Path(__file__).resolve().parent.parent

cli = typer.Typer(
    help="Living Codex Ops: run, check, gate and promote the Living Codex.",
    no_args_is_help=True,
    add_completion=False,
)


@cli.callback()
def _group() -> None:
    """Living Codex Ops: run, check, gate and promote the Living Codex."""


def load_settings() -> Settings:
    """Read the environment; a bad setting ends the command with what to change, not a traceback."""
    try:
        return Settings()
    except (ValidationError, ConfigError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        for error in errors:
            where = ".".join(str(p) for p in error.get("loc", ())) or "configuration"
            typer.secho(f"error: {where}: {error['msg']}", fg="red", err=True)
        typer.echo("Fix the environment variable named above and run the command again.", err=True)
        raise typer.Exit(2) from None


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default from CODEX_URLS)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default from CODEX_URLS, 5002)")] = None,
) -> None:
    """Run the service (CODEX_URLS, default http://+:5002)."""
    from codexops.serve import run

    settings = load_settings()
    if host or port:  # the instance name and logs follow the address actually served
        bind_host, bind_port = settings.bind
        settings = settings.model_copy(update={"urls": f"http://{host or bind_host}:{port or bind_port}"})
    try:
        run(settings)
    except OSError as exc:
        typer.secho(
            f"error: cannot listen: {exc}. Is another server on that port? Check with: lsof -i :PORT",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from None


@cli.command()
def preview(
    stack: Annotated[str, typer.Argument(help="a stack: Pulumi.<STACK>.yaml in --stacks")],
    stacks: Annotated[Path, typer.Option(help="folder of the Pulumi.<stack>.yaml files")] = ROOT,
    out: Annotated[Path, typer.Option(help="manifests go to OUT/<STACK>/")] = ROOT / "build" / "manifests",
) -> None:
    """Evaluate STACK offline (Pulumi mocks): the plan, its Kubernetes manifests, schema validation."""
    from codexops.preview import print_plan, print_policies, print_validation, run_preview
    from infra.spec import SpecError, load_spec

    try:
        spec = load_spec(stack, stacks)
    except SpecError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    result = run_preview(spec, out)
    print_plan(result)
    print_validation(result)
    print_policies(result)
    typer.echo(f"Evaluated in {result.seconds:.2f} s")
    if result.errors or result.mandatory_violations:
        typer.secho(
            f"preview FAILED: {len(result.errors)} invalid manifests, {len(result.mandatory_violations)} "
            "mandatory policy violations; fix what is named above",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)


def _spec_or_exit(stack: str) -> EnvironmentSpec:
    from infra.spec import SpecError, load_spec

    try:
        return load_spec(stack)
    except SpecError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            typer.secho(f"error: --app-env {value!r} is not KEY=VALUE", fg="red", err=True)
            raise typer.Exit(2)
        pairs[key] = val
    return pairs


@cli.command()
def up(
    stack: Annotated[str, typer.Option(help="the spec the local environment renders from")] = "staging",
    app_env: Annotated[list[str], typer.Option(help="KEY=VALUE for both app replicas (e.g. chaos)")] = [],  # noqa: B006
) -> None:
    """Start the local environment (nginx :5002, 2 app replicas, Redis, PostgreSQL, Prometheus)."""
    from codexops import localenv

    spec = _spec_or_exit(stack)
    began = time.monotonic()
    typer.echo(f"==> codexops up (spec {stack}) in {localenv.RUNTIME}")
    try:
        localenv.up(spec, typer.echo, _pairs(app_env))
    except localenv.LocalEnvError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.secho(
        f"==> local environment healthy in {time.monotonic() - began:.1f} s: "
        f"{localenv.gateway_url()} (Prometheus {localenv.prometheus_url()})",
        fg="green",
    )


@cli.command()
def down(purge: Annotated[bool, typer.Option(help="also delete data and local secrets")] = False) -> None:
    """Stop the local environment; no process is left behind."""
    from codexops import localenv

    try:
        localenv.down(typer.echo, purge)
    except localenv.LocalEnvError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo("==> local environment stopped")


@cli.command()
def status() -> None:
    """Each local process, its supervisor state, port and health."""
    from codexops import localenv

    rows = localenv.status()
    typer.echo(f"{'process':<12} {'state':<12} {'port':>5}  health")
    for name, state, port, health in rows:
        typer.secho(f"{name:<12} {state:<12} {port:>5}  {health}", fg="green" if health == "healthy" else "red")
    if any(health != "healthy" for *_, health in rows):
        raise typer.Exit(1)


@cli.command()
def gate(
    target: Annotated[str, typer.Option(help="local, staging, production or a URL")] = "local",
    stack: Annotated[str | None, typer.Option(help="whose thresholds apply (default: staging for local)")] = None,
    shape: Annotated[str, typer.Option(help="load shape: smoke, gate, soak, spike")] = "gate",
    scale: Annotated[float, typer.Option(help="stretch or shrink the load shape")] = 1.0,
    prometheus_url: Annotated[str | None, typer.Option(help="Prometheus of the target")] = None,
    reports: Annotated[Path, typer.Option(help="reports go to REPORTS/<target>-<timestamp>/")] = ROOT / "reports",
) -> None:
    """Checklist, load test, alert state: PASS, WARN or FAIL (exit 0, 0, 1; 2 when it cannot run)."""
    from codexops.gate import GateCannotRun, run_gate

    stack_name = stack or (target if target in ("staging", "production") else "staging")
    spec = _spec_or_exit(stack_name)
    began = time.monotonic()
    try:
        report = run_gate(
            target,
            spec,
            shape=shape,
            scale=scale,
            prometheus_url=prometheus_url,
            reports=reports,
            say=typer.echo,
        )
    except (GateCannotRun, ValueError) as exc:
        typer.secho(f"gate could not run: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}[report.verdict]
    typer.secho(f"==> verdict: {report.verdict} ({time.monotonic() - began:.1f} s)", fg=colour, bold=True)
    for reason in report.reasons():
        typer.echo(f"    - {reason}")
    typer.echo(f"==> report: {report.directory}/report.md")
    raise typer.Exit(report.exit_code)


register_release_commands(cli)


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
