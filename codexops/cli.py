"""The `codexops` command."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codexops.keys_cli import keys_cli
from codexops.release_cli import register as register_release_commands
from infra.root import ROOT as ROOT

if TYPE_CHECKING:
    from app.config import Settings
    from codexops.releases.serving import Replica
    from infra.spec import EnvironmentSpec

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
    from pydantic import ValidationError

    from app.config import ConfigError, Settings  # here: only `serve` reads the service's settings

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
    stacks: Annotated[
        Path | None, typer.Option(help="folder of the Pulumi.<stack>.yaml files (default: the repository's)")
    ] = None,
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
    stand_in = not spec.image
    if stand_in:
        from infra.mock_runtime import with_release

        spec = with_release(spec)
        typer.secho(
            f"note: no release promoted to {stack} yet (living-codex:image is unset): previewing with a "
            f"stand-in digest, {spec.image}; `pulumi up` refuses the stack until a release is promoted",
            fg="yellow",
        )
    result = run_preview(spec, out, stand_in=stand_in)
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


StackOption = Annotated[str, typer.Option(help="the stack (Pulumi.<STACK>.yaml) whose local environment this is")]


@cli.command()
def up(
    stack: StackOption = "staging",
    app_env: Annotated[list[str], typer.Option(help="KEY=VALUE for every app replica (e.g. chaos)")] = [],  # noqa: B006
) -> None:
    """Start a stack's local environment (nginx, its app replicas, Redis, PostgreSQL, Prometheus)."""
    from codexops import localenv

    spec = _spec_or_exit(stack)
    began = time.monotonic()
    local = localenv.LocalStack(spec)
    typer.echo(f"==> codexops up --stack {stack} in {local.runtime}")
    try:
        localenv.up(spec, typer.echo, _pairs(app_env))
    except localenv.LocalEnvError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.secho(
        f"==> stack {stack} healthy in {time.monotonic() - began:.1f} s: "
        f"{local.gateway_url()} (Prometheus {local.prometheus_url()})",
        fg="green",
    )


@cli.command()
def down(
    stack: StackOption = "staging",
    purge: Annotated[bool, typer.Option(help="also delete data and local secrets")] = False,
) -> None:
    """Stop a stack's local environment; no process is left behind."""
    from codexops import localenv

    try:
        localenv.down(typer.echo, purge, stack=localenv.LocalStack(_spec_or_exit(stack)))
    except localenv.LocalEnvError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"==> stack {stack} stopped")


@cli.command()
def status(
    stack: StackOption = "staging",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable: gateway URL and each process")] = False,
) -> None:
    """Each process of a stack's local environment: supervisor state, port, health (exit 1 if unhealthy)."""
    import json

    from codexops import localenv
    from codexops.releases.local_backend import LocalBackend, stack_release

    local = localenv.LocalStack(_spec_or_exit(stack))
    rows = localenv.status(local)
    serving = LocalBackend().serving(stack)  # each replica asked what it runs, not state.json
    replicas = {replica.name: replica for replica in serving.replicas}
    if as_json:
        document = {
            "stack": stack,
            "gateway": local.gateway_url(),
            "prometheus": local.prometheus_url(),
            "release": stack_release(serving),
            "processes": [
                {
                    "name": name,
                    "state": state,
                    "port": port,
                    "health": health,
                    **(replica_json(replicas[name]) if name in replicas else {"release": None}),
                }
                for name, state, port, health in rows
            ],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(f"stack {stack}: gateway {local.gateway_url()}; serves {serving.describe()}")
        typer.echo(f"{'process':<12} {'state':<12} {'port':>5}  {'health':<10} release")
        for name, state, port, health in rows:
            replica = replicas.get(name)
            release = replica.describe().partition(" ")[2] if replica else ""  # "serves X (problem)"
            colour = "green" if health == "healthy" and not (replica and replica.problem) else "red"
            typer.secho(f"{name:<12} {state:<12} {port:>5}  {health:<10} {release}", fg=colour)
    if any(health != "healthy" for *_, health in rows):
        raise typer.Exit(1)


def replica_json(replica: Replica) -> dict[str, str | None]:
    return {"release": replica.release, "digest": replica.digest, "folder": replica.folder, "problem": replica.problem}


@cli.command()
def gate(
    target: Annotated[str, typer.Option(help="local, a stack (its local environment with --local) or a URL")] = "local",
    stack: Annotated[str | None, typer.Option(help="for a URL: whose spec applies (default staging)")] = None,
    local: Annotated[bool, typer.Option("--local", help="a stack name means its local environment")] = False,
    shape: Annotated[str, typer.Option(help="load shape: smoke, gate, soak, spike")] = "gate",
    scale: Annotated[float, typer.Option(help="stretch or shrink the load shape")] = 1.0,
    prometheus_url: Annotated[str | None, typer.Option(help="Prometheus of the target")] = None,
    reports: Annotated[
        Path, typer.Option(envvar="CODEX_REPORTS_DIR", help="reports go to REPORTS/<target>-<timestamp>/")
    ] = ROOT / "reports",
    baseline_prometheus_url: Annotated[
        str | None,
        typer.Option(
            envvar="CODEX_BASELINE_PROMETHEUS_URL",
            help="Prometheus of the stack the release would be promoted to (a local stack's is known)",
        ),
    ] = None,
) -> None:
    """Checklist, load test, alert state: PASS, WARN or FAIL (exit 0, 0, 1; 2 when it cannot run), or
    INCONCLUSIVE (exit 3): the load generator was starved (its CPU, its send lag or its wait for a CPU),
    so the load's rate and latency judged nothing (errors and the checklist still FAIL); never promotion
    evidence. Run it again on a quieter machine."""
    from codexops.gate import GateCannotRun, run_gate
    from codexops.targets import TargetError, resolve_target

    began = time.monotonic()
    try:
        resolved = resolve_target(target, stack=stack, prometheus_url=prometheus_url, local=local)
        report = run_gate(
            resolved,
            shape=shape,
            scale=scale,
            reports=reports,
            say=typer.echo,
            baseline_prometheus_url=baseline_prometheus_url,
        )
    except (GateCannotRun, TargetError, ValueError) as exc:
        typer.secho(f"gate could not run: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if resolved.kind != "url":  # the stack's evidence for promotion (the gate of the release it serves)
        from codexops.releases.history import record_gate

        record_gate(resolved.spec.stack, report)
    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "INCONCLUSIVE": "magenta"}[report.verdict]
    typer.secho(f"==> verdict: {report.verdict} ({time.monotonic() - began:.1f} s)", fg=colour, bold=True)
    for reason in report.reasons():
        typer.echo(f"    - {reason}")
    typer.echo(f"==> report: {report.directory}/report.md")
    raise typer.Exit(report.exit_code)


release_cli = typer.Typer(help="Immutable releases of the service.", no_args_is_help=True)
cli.add_typer(release_cli, name="release")
cli.add_typer(keys_cli, name="keys")


@release_cli.command("build")
def release_build(
    docker: Annotated[bool, typer.Option("--docker", help="build the image of app/Dockerfile (needs Docker)")] = False,
    image: Annotated[
        str | None, typer.Option(help="record an image built elsewhere (CI): REF@sha256:<64 hex>, nothing is built")
    ] = None,
) -> None:
    """Build a release: the wheel with the locked dependencies in .local/releases/<version>-<digest12>/.
    The last line printed is the release id."""
    from codexops.releases.build import BuildError, build_image, build_release, record_image

    began = time.monotonic()
    try:
        if image:
            release = record_image(image, typer.echo)
        elif docker:
            release = build_image(typer.echo)
        else:
            release = build_release(typer.echo)
    except BuildError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"==> release {release.id} ({time.monotonic() - began:.1f} s): {release.image or release.path}")
    typer.echo(f"    digest {release.digest}, commit {release.commit}, schema {release.schema_head}")
    typer.echo(release.id)


register_release_commands(cli)


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
