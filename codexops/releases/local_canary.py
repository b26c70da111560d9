"""The canary on a local stack: one more replica of the new release (program `canary`, its own port)
beside the serving ones, its share of requests set by nginx weights, scraped by the stack's Prometheus.
Its state lives in state.json ("canary"), so the rendered files say where a rollout stands and a rollout
killed halfway is visible to `diff` and cleaned up by the next deploy."""

from __future__ import annotations

from typing import Any

from codexops import localenv
from codexops.releases.backend import Progress
from codexops.releases.local_replicas import apply_settings, start_replica
from codexops.releases.model import Release
from codexops.rollout.analysis import Query
from codexops.rollout.prometheus import instant_query


class LocalCanary:
    def __init__(self, local: localenv.LocalStack, release: Release) -> None:
        self.local, self.release = local, release

    def _set(self, canary: dict[str, Any] | None) -> None:
        state = localenv.read_state(self.local)
        if canary is None:
            state.pop("canary", None)
        else:
            state["canary"] = canary
        localenv.write_state(self.local, state)

    def start_canary(self, release_id: str, progress: Progress) -> str | None:
        progress(f"  canary (:{self.local.ports.canary}) -> {release_id}, no traffic yet")
        self._set({"release": self.release.to_json(), "weight": 0})
        localenv.make_folders(self.local)
        localenv.write_supervisor_conf(self.local, localenv.read_state(self.local))
        localenv.supervisor(self.local).update(localenv.CANARY)  # adds the program
        apply_settings(self.local, progress)  # Prometheus scrapes it from now on
        return start_replica(self.local, localenv.CANARY, self.local.ports.canary, release_id)

    def route(self, weight: int, progress: Progress) -> None:
        state = localenv.read_state(self.local)
        canary = localenv.canary_of(state)
        if canary is None:
            return
        self._set({**canary, "weight": weight})
        apply_settings(self.local, progress)  # nginx re-reads its upstream weights (SIGHUP: nothing dropped)

    def stop_canary(self, progress: Progress) -> None:
        """Out of the upstream first, then drained and stopped, then gone from the configuration."""
        self.route(0, progress)
        control = localenv.supervisor(self.local)
        control.stop(localenv.CANARY)
        self._set(None)
        localenv.write_supervisor_conf(self.local, localenv.read_state(self.local))
        control.update(localenv.CANARY)  # removes it
        apply_settings(self.local, progress)
        progress("  canary stopped and removed")

    def query(self) -> Query:
        return instant_query(self.local.prometheus_url())


def leftover(local: localenv.LocalStack) -> bool:
    """A canary from a rollout that did not finish (killed halfway)."""
    return localenv.canary_of(localenv.read_state(local)) is not None
