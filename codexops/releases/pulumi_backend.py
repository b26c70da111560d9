"""The Pulumi backend: the Automation API drives the stacks of this repository (Pulumi.<stack>.yaml).

Deploy = select the stack and `up` it with the policy pack: the image is the one Pulumi.<stack>.yaml
names (the desired state committed in Git; nothing is set at run time), and it must be the release's.
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
from codexops.releases.model import Release, list_releases
from codexops.releases.serving import Replica, Serving
from codexops.targets import remote_target
from infra.spec import load_spec

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
        from pulumi.automation.errors import CommandError

        named = desired.read(stack, self._root).image
        if named != release.image:
            return DeployOutcome(
                False,
                f"Pulumi.{stack}.yaml names image {named or '(none)'}, not {release.id}'s {release.image}: "
                "commit it first",
            )
        environment = load_spec(stack, self._root).environment.lower()
        try:
            target = self._stack(stack)
            progress(f"  pulumi up --stack {stack} with the policy pack ({environment})")
            result = target.up(
                on_output=progress,
                refresh=True,  # read what really runs first: a change made outside Pulumi is not overwritten blind
                policy_packs=[str(self._root / "policies")],
                policy_pack_configs=[str(self._root / "policies" / "config" / f"{environment}.json")],
                message=f"deploy {release.id}",
            )
        except CommandError as exc:
            return DeployOutcome(False, f"pulumi up failed: {str(exc).strip()[-500:]}")
        if result.summary.result != "succeeded":
            return DeployOutcome(False, f"pulumi up ended {result.summary.result}")
        outputs = ", ".join(f"{k}={v.value}" for k, v in result.outputs.items() if not v.secret)
        return DeployOutcome(True, f"pulumi up succeeded: {outputs or 'no outputs'}")

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
        username, password = outputs.get("gateUsername"), outputs.get("gatePassword")
        return (str(username.value) if username else None), (str(password.value) if password else None)
