"""The load the suite's full gates run at, in every stack a test starts.

The runbook's rate (the spec's default, 150 RPS for 45 s) is a capacity figure: `make gate` measures it
on a machine of its own, and benchmarks/RESULTS.md says what the replicas take. `make test` runs its
shards side by side on 2 cores, where a full gate at that rate is rightly INCONCLUSIVE: in a CI run its
client waited for a CPU 28 % of the time and the stack, starved too, answered 111 of 150 RPS at p95
530 ms. The suite's gates test the flow (a verdict, its evidence, what promote and sync do with it), so
they run at a rate a shared machine delivers. 15 users put one in every class of the mix (Locust gives a
class with a 4 % share its first user at the 15th), so every dashboard query gets data. A deploy's smoke
runs 10 s (3 users, about 60 requests) instead of the default 20: the suite's stack tests ran about 45
smokes, so the default's extra 10 s each were 7 minutes of shard time."""

from __future__ import annotations

from infra.spec import EnvironmentSpec, Load

SUITE_LOAD = {"targetRps": 30, "durationSeconds": 15, "rampSeconds": 4, "users": 15, "smokeSeconds": 10}


def suite_load_yaml() -> str:
    """SUITE_LOAD as one line of flow YAML, for a stack file's `living-codex:load`."""
    return "{" + ", ".join(f"{key}: {value}" for key, value in SUITE_LOAD.items()) + "}"


def with_suite_load(spec: EnvironmentSpec) -> EnvironmentSpec:
    return spec.model_copy(update={"load": Load.model_validate(SUITE_LOAD)})
