"""The Pulumi backend: the Automation API drives the stacks of this repository (Pulumi.<stack>.yaml).

Deploy = select the stack and `up` it with the policy pack: the image is the one Pulumi.<stack>.yaml
names (the desired state committed in Git; nothing is set at run time), and it must be the release's.
A Docker stack with canary steps walks them first (codexops/releases/docker_canary.py), each step an `up`
of a copy of that file; Kubernetes runs them under Argo Rollouts.
It is thin and honest: without the Pulumi CLI it says so (exit 2), and it reports a deployment only
when `up` says it succeeded. Drift is `preview --expect-no-changes`.

`pulumi.automation` is imported in the functions that use it, the only imports inside functions in
codexops/releases/: it loads gRPC and protobuf (about 0.1 s), which a local-backend command never needs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from codexops.backend_choice import BackendUnavailable
from codexops.gate import GateReport, run_gate
from codexops.releases import desired
from codexops.releases.backend import DeployOutcome, Progress
from codexops.releases.docker_canary import CanaryCannotRun, DockerCanary, PulumiUpFailed, ServingRelease, walk
from codexops.releases.model import Release, list_releases
from codexops.releases.serving import Replica, Serving
from codexops.rollout.driver import RolloutResult
from codexops.rollout.prometheus import instant_query
from codexops.targets import gateway_url, remote_target
from infra.spec import EnvironmentSpec, load_spec

SelectStack = Callable[..., Any]  # pulumi.automation.select_stack, or a stand-in in tests


def _select_stack(**kwargs: Any) -> Any:
    from pulumi import automation

    return automation.select_stack(**kwargs)


class PulumiBackend:
    name = "pulumi"
    deploys_by_image = True

    def __init__(self, select_stack: SelectStack = _select_stack, root: Path | None = None) -> None:
        if shutil.which("pulumi") is None:
            raise BackendUnavailable(
                "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/); "
                "install it, or use the local backend: --local or CODEX_BACKEND=local"
            )
        self._select, self._root = select_stack, root or desired.repo_dir()

    def _stack(self, stack: str) -> Any:
        return self._select(stack_name=stack, work_dir=str(self._root))

    def deploy(self, stack: str, release: Release, progress: Progress) -> DeployOutcome:
        if not release.image:
            return DeployOutcome(False, f"{release.id} has no image: build it where Docker runs")
        named = desired.read(stack, self._root).image
        if named != release.image:
            return DeployOutcome(
                False,
                f"Pulumi.{stack}.yaml names image {named or '(none)'}, not {release.id}'s {release.image}: "
                "commit it first",
            )
        spec = load_spec(stack, self._root)
        environment = spec.environment.lower()
        rollout: RolloutResult | None = None
        try:
            target = self._stack(stack)
            rollout = self._canary_steps(target, spec, release, progress)
            if rollout is not None and rollout.outcome == "ABORTED":
                return DeployOutcome(
                    False,
                    f"canary aborted, the serving replicas never changed: {rollout.reason}",
                    None,
                    rollout.as_dict(),
                )
            # After the steps, the file's own `up`: the replicas move while the canary still takes its
            # share, and it is removed last (infra/components/gateway.py puts the upstream back first).
            progress(f"  pulumi up --stack {stack} with the policy pack ({environment})")
            result = self._up(target, environment, progress, f"deploy {release.id}")
        except (CanaryCannotRun, PulumiUpFailed) as exc:
            return DeployOutcome(False, str(exc), None, rollout.as_dict() if rollout else None)
        outputs = ", ".join(f"{k}={v.value}" for k, v in result.outputs.items() if not v.secret)
        detail = f"pulumi up succeeded: {outputs or 'no outputs'}"
        if rollout is not None:
            detail += f", after {len(rollout.steps)} canary steps"
        return DeployOutcome(True, detail, None, rollout.as_dict() if rollout else None)

    def _up(self, target: Any, environment: str, progress: Progress, message: str, config: Path | None = None) -> Any:
        """`pulumi up` with the policy pack; `config`: a config file other than the committed one."""
        from pulumi.automation.errors import CommandError

        try:
            result = target.up(
                on_output=progress,
                refresh=True,  # read what really runs first: a change made outside Pulumi is not overwritten blind
                policy_packs=[str(self._root / "policies")],
                policy_pack_configs=[str(self._root / "policies" / "config" / f"{environment}.json")],
                message=message,
                **({"config_file": str(config)} if config else {}),
            )
        except CommandError as exc:
            raise PulumiUpFailed(f"pulumi up failed: {str(exc).strip()[-500:]}") from None
        if result.summary.result != "succeeded":
            raise PulumiUpFailed(f"pulumi up ended {result.summary.result}")
        return result

    def _canary_steps(
        self, target: Any, spec: EnvironmentSpec, release: Release, progress: Progress
    ) -> RolloutResult | None:
        """A Docker stack's steps, walked by codexops (codexops/releases/docker_canary.py), when the spec
        has steps and another image serves; None: straight to `up`. Kubernetes: Argo Rollouts walks the
        steps the program declares (infra/components/canary.py), within that `up`'s rollout."""
        from pulumi.automation.errors import CommandError

        if spec.platform != "docker" or not spec.rollout.steps:
            return None
        try:
            outputs = target.outputs()
        except CommandError:
            return None
        image = outputs.get("image")
        if image is None or not image.value or image.value == release.image:
            return None  # nothing deployed yet, or this release already: nothing to compare with
        prometheus = remote_target(spec.stack, spec.stack, None).prometheus_url
        if not prometheus:
            raise CanaryCannotRun(
                f"{spec.stack}'s canary steps are analysed on its Prometheus: set CODEX_PROMETHEUS_URL "
                "(main.yml: the PROMETHEUS_URL variable); nothing was deployed"
            )
        served = outputs.get("release")
        serving = ServingRelease(str(image.value), str(served.value) if served else "")
        environment = spec.environment.lower()

        def up(config: Path | None, message: str) -> None:
            self._up(target, environment, progress, message, config)

        platform = DockerCanary(spec.stack, self._root, up, serving, release, instant_query(prometheus))
        account = _value(outputs, "gateUsername"), _value(outputs, "gatePassword")
        return walk(platform, spec, gateway_url(spec), account, progress)

    def serving_image(self, stack: str) -> str | None:
        """The image the stack's last deployment exported (None before the first `up`)."""
        from pulumi.automation.errors import CommandError

        try:
            outputs = self._stack(stack).outputs()
        except CommandError:
            return None
        return str(outputs["image"].value) if "image" in outputs else None

    def current_release(self, stack: str) -> Release | None:
        """The release whose image the stack's last deployment exported, if the release store knows it."""
        image = self.serving_image(stack)
        return next((r for r in reversed(list_releases()) if image and r.image == image), None)

    def serving(self, stack: str) -> Serving:
        """The stack's last deployment, as its outputs say: one entry, the image it exported (the
        platform keeps every replica on it; `diff` adds `preview --refresh` for what changed outside)."""
        image = self.serving_image(stack)
        if image is None:
            return Serving((Replica("deployment", "NOT DEPLOYED", None, problem="no image exported"),))
        known = next((r for r in reversed(list_releases()) if r.image == image), None)
        digest = image.rpartition("@")[2] or None
        if known is None:
            return Serving(
                (Replica("deployment", "DEPLOYED", None, digest, problem=f"{image} is no known release"),), image
            )
        return Serving((Replica("deployment", "DEPLOYED", known.id, digest),), image)

    def check_release(self, release: Release) -> None:
        """Nothing to check here: an image is named by its registry digest, which is its content."""

    def drift(self, stack: str) -> str:
        """What `pulumi preview --refresh --expect-no-changes` finds between the stack and its file ("" for nothing)."""
        from pulumi.automation.errors import CommandError

        environment = load_spec(stack, self._root).environment.lower()
        try:
            self._stack(stack).preview(
                expect_no_changes=True,
                refresh=True,  # resources changed outside Pulumi count too
                policy_packs=[str(self._root / "policies")],
                policy_pack_configs=[str(self._root / "policies" / "config" / f"{environment}.json")],
            )
        except CommandError as exc:
            return str(exc).strip()[-2000:] or "pulumi preview reports changes"
        return ""

    def restore_backup(self, stack: str, backup: Path, progress: Progress) -> None:
        raise BackendUnavailable(
            f"the Pulumi backend does not restore databases: restore {backup} with pg_restore against "
            f"{stack}'s PostgreSQL (runbook: Database Rollback), then run the rollback again"
        )

    def gate(self, stack: str, shape: str, reports: Path, since: datetime | None = None) -> GateReport:
        target = remote_target(stack, stack, None)
        if not (target.load_username and target.load_password):  # the gate's account, from the stack
            username, password = self.gate_account(stack)
            target = replace(target, load_username=username, load_password=password)
        return run_gate(target, shape=shape, reports=reports, since=since)

    def gate_account(self, stack: str) -> tuple[str | None, str | None]:
        """The gate's editor account, as the stack exports it (gateUsername, the secret gatePassword)."""
        from pulumi.automation.errors import CommandError

        try:
            outputs = self._stack(stack).outputs()
        except CommandError:
            return None, None
        return _value(outputs, "gateUsername"), _value(outputs, "gatePassword")


def _value(outputs: dict[str, Any], key: str) -> str | None:
    found = outputs.get(key)
    return str(found.value) if found else None
