"""Two local stacks whose desired state is committed (tests/support/two_stacks.py), for the GitOps tests:
both serve the good release, committed as deploy commits it (its trailers name the source commit), and
production's evidence committed as `promote` commits it (a signed full-gate attestation)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from codexops.releases.local_backend import LocalBackend
from codexops.releases.promote import change
from tests.support.evidence import commit_evidence
from tests.support.two_stacks import STACKS, Builder, World, two_stacks


@contextmanager
def committed_world(tmp: Path, builders: dict[str, Builder]) -> Iterator[World]:
    with two_stacks(tmp, builders) as world:
        with ThreadPoolExecutor(len(STACKS)) as pool:
            outcomes = list(pool.map(lambda stack: LocalBackend().deploy(stack, world.good, print), STACKS))
        assert all(outcome.ok for outcome in outcomes), [outcome.detail for outcome in outcomes]
        commit_evidence("production", world.good)
        for stack in STACKS:
            committed = change(
                LocalBackend(), stack, world.good, kind="deploy", reports=tmp / "reports", say=print, commit_only=True
            )
            assert committed.verdict == "COMMITTED", committed.message
        yield world


def good_everywhere(world: World) -> None:
    """Both stacks named and serving good: each test leaves them so; after a failed one, deployed again."""
    for stack in STACKS:
        world.on_release(stack, world.good)
