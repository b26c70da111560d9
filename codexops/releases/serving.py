"""What a stack serves, asked of the stack itself: each replica's own answer, never a record of it.

A backend's `serving(stack)` reports every replica (locally: supervisord's state, what its /health says
it runs, the release folder its process executes, and whether that folder still matches its manifest;
Pulumi: the deployment's exported image). A stack serves release R only when every replica serves R,
running, with nothing wrong (`uniform`); anything else (a stopped replica, mixed releases, edited bytes)
is drift that `diff` reports and `sync` repairs.
"""

from __future__ import annotations

from dataclasses import dataclass

from codexops.releases import history


@dataclass(frozen=True)
class Replica:
    name: str
    state: str  # supervisord's (RUNNING, STOPPED, FATAL, ...) or the platform's
    release: str | None  # the release id it reports (/health `version`); None: no release, or no answer
    digest: str | None = None  # the release digest it reports (/health `digest`)
    folder: str | None = None  # the release folder its process executes
    problem: str = ""  # what is wrong with it ("" when it serves `release` as built)
    started_at: float | None = None  # when its process started (epoch seconds), when it says

    @property
    def sound(self) -> bool:
        return self.release is not None and not self.problem

    def describe(self) -> str:
        serves = f"serves {self.release}" if self.release else "serves no release"
        return f"{self.name} {serves}" + (f" ({self.problem})" if self.problem else "")


@dataclass(frozen=True)
class Serving:
    replicas: tuple[Replica, ...]
    image: str | None = None  # the image the platform runs (Pulumi), when there is one

    @property
    def uniform(self) -> str | None:
        """The release every replica serves soundly, with one digest; None when any differs or is down."""
        if not self.replicas or not all(r.sound for r in self.replicas):
            return None
        served = {(r.release, r.digest) for r in self.replicas}
        return self.replicas[0].release if len(served) == 1 else None

    def differences(self, want: str) -> list[str]:
        """Each replica that does not serve `want` soundly, saying what it does ([] when all do)."""
        return [r.describe() for r in self.replicas if not (r.sound and r.release == want)] or (
            [] if self.replicas else ["no replica runs"]
        )

    @property
    def started(self) -> float | None:
        """When the newest replica started, if the replicas say."""
        times = [r.started_at for r in self.replicas if r.started_at is not None]
        return max(times) if times else None

    def describe(self) -> str:
        if self.uniform:
            return self.uniform
        if not self.replicas:
            return "nothing (no replica runs)"
        return "; ".join(r.describe() for r in self.replicas)


def unverified(stack: str, release: str, serving: Serving) -> str:
    """Why the stack's replicas serve `release` unverified ("" when verified): no checklist and smoke (or
    gate) of it passed on the stack since its newest replica started, e.g. a deploy killed during its
    verification, or a replica restarted since. Backends whose replicas give no start time are not judged."""
    started = serving.started
    if started is None:
        return ""
    for event in history.read(stack):  # history's times are whole seconds
        passed = event.release == release and event.verdict in ("PASS", "WARN")
        if passed and event.at_time.timestamp() + 1 >= started:
            return ""
    return (
        f"no verification of {release} passed on {stack} since its replicas started "
        "(a deploy stopped before its checklist ended?)"
    )
