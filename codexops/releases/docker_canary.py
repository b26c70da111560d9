"""The canary on a Docker stack (staging), driven by codexops: each change is a `pulumi up` of the stack's
program with `living-codex:canary` {release, image, weight} (infra/spec.py DockerCanary), which declares one
canary container beside the serving ones and the gateway's weighted upstream, reloaded in place
(infra/components/gateway.py).

While the rollout runs, the serving replicas are held on the image the stack serves: the committed file
already names the new one, so each step's `up` reads a copy of that file with `living-codex:image` and
`living-codex:release` set back to what the stack exported, and the canary added (`--config-file`). The
committed file is never edited: a rollout killed halfway leaves a canary that `diff` (preview) shows and
the next `up` of the file removes.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from codexops.releases.backend import Progress
from codexops.releases.model import Release
from codexops.rollout.analysis import Query
from codexops.rollout.driver import RolloutResult, run_canary
from codexops.rollout.traffic import rehearsal_traffic
from infra import canary_queries as q
from infra.spec import NAMESPACE, EnvironmentSpec, stack_file

READY_SECONDS = 120.0  # Prometheus scrapes every 15 s: a canary it has not seen in this time is not serving
POLL_SECONDS = 5.0


class CanaryCannotRun(RuntimeError):
    """The steps cannot be walked (no Prometheus to analyse with, no account for rehearsal traffic);
    nothing was changed."""


class PulumiUpFailed(RuntimeError):
    """A rollout's `pulumi up` failed or did not succeed; the message is the engine's."""


# Runs `pulumi up` of the stack with the given config file (None: the committed one), for `message`.
Up = Callable[[Path | None, str], None]


@dataclass(frozen=True)
class ServingRelease:
    """What the stack serves now, as its last `up` exported it (`image`, `release`)."""

    image: str
    release: str


class DockerCanary:
    def __init__(
        self,
        stack: str,
        root: Path,
        up: Up,
        serving: ServingRelease,
        release: Release,
        query: Query,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        assert release.image, "a Docker canary runs the release's image"
        self.stack, self.root, self._up, self.serving = stack, root, up, serving
        self.release, self.image, self._query, self._sleep = release, release.image, query, sleep

    def config_file(self, folder: Path, canary: dict[str, Any] | None) -> Path:
        """A copy of Pulumi.<stack>.yaml serving what the stack serves, with the canary when given."""
        document = yaml.safe_load(stack_file(self.stack, self.root).read_text())
        config = document["config"]
        config[f"{NAMESPACE}:image"] = self.serving.image
        if self.serving.release:
            config[f"{NAMESPACE}:release"] = self.serving.release
        else:  # a stack deployed before it exported its release
            config.pop(f"{NAMESPACE}:release", None)
        if canary is not None:
            config[f"{NAMESPACE}:canary"] = canary
        path = folder / f"Pulumi.{self.stack}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def _apply(self, weight: int | None, message: str) -> None:
        """`pulumi up` with the canary at `weight` (None: without it), the serving replicas held."""
        canary = None if weight is None else {"release": self.release.id, "image": self.image, "weight": weight}
        with tempfile.TemporaryDirectory(prefix="codex-canary-") as folder:
            self._up(self.config_file(Path(folder), canary), message)

    def start_canary(self, release_id: str, progress: Progress) -> str | None:
        progress(f"  canary container -> {release_id}, no traffic yet (pulumi up)")
        try:
            self._apply(0, f"canary {release_id}: started, weight 0")
        except PulumiUpFailed as exc:
            return str(exc)
        return self._await_scrape(release_id, progress)

    def _await_scrape(self, release_id: str, progress: Progress) -> str | None:
        """The canary serves once Prometheus scrapes it: the analysis reads nothing of it before."""
        waited = 0.0
        while waited < READY_SECONDS:
            if self._query(q.scraped(release_id)):
                progress(f"  canary {release_id} serves and Prometheus scrapes it")
                return None
            self._sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        return f"Prometheus scraped no replica of {release_id} within {READY_SECONDS:.0f} s"

    def route(self, weight: int, progress: Progress) -> None:
        """Raises PulumiUpFailed: the rollout cannot go on (the caller removes the canary)."""
        progress(f"  gateway: {weight}% of requests to the canary (pulumi up, nginx reloaded in place)")
        self._apply(weight, f"canary {self.release.id}: weight {weight}")

    def stop_canary(self, progress: Progress) -> None:
        """Removed by an `up` without it: the gateway's uploaded upstream is put back and reloaded before
        the canary's container is deleted (the reload command depends on it)."""
        self._apply(None, f"canary {self.release.id}: removed")
        progress(f"  canary removed; {self.stack} serves {self.serving.release}")

    def query(self) -> Query:
        return self._query


def walk(
    platform: DockerCanary, spec: EnvironmentSpec, url: str, account: tuple[str | None, str | None], progress: Progress
) -> RolloutResult:
    """The spec's steps on the stack (codexops/rollout/driver.py, as the local backend runs them), with its
    rehearsal traffic through the gateway at `url` as the gate's `account`. A step that cannot be applied
    or analysed (an `up` failed, Prometheus unreachable) aborts the rollout and removes the canary."""
    steps, rps = spec.rollout.steps, spec.rollout.trafficRps
    username, password = account
    if rps and not (username and password):
        raise CanaryCannotRun(
            f"{spec.stack}'s rollout sends {rps:g} requests/s of rehearsal traffic as the gate's account, "
            "which the stack does not export (gateUsername, gatePassword): deploy it once without steps"
        )
    progress(f"  canary: {len(steps)} steps before the replicas move ({', '.join(f'{s.weight}%' for s in steps)})")
    try:
        if not rps:
            return run_canary(platform, platform.release.id, spec, progress)
        assert username and password
        progress(f"  rehearsal traffic: {rps:g} requests/s through {url} during each step")
        with rehearsal_traffic(url, username, password, rps) as sent:
            result = run_canary(platform, platform.release.id, spec, progress)
        progress(f"  rehearsal traffic: {sent.requests} requests, {sent.failed} failed")
        return result
    except (PulumiUpFailed, httpx.HTTPError, ValueError) as exc:
        progress(f"  the rollout cannot go on ({exc}): the canary is removed")
        platform.stop_canary(progress)
        return RolloutResult("ABORTED", reason=f"the rollout could not go on: {exc}")
