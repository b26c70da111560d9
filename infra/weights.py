"""nginx upstream weights that send a step's share of requests to the canary beside the serving replicas:
the local backend's gateway and Docker staging's (infra/components/gateway.py) use the same."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Weights:
    baseline: int  # each serving replica's weight
    canary: int  # the canary's (0: not in the upstream)


def upstream_weights(weight: int, replicas: int) -> Weights:
    """`weight` percent to one canary, the rest spread over `replicas` serving replicas: with each serving
    replica at 100 - w and the canary at w * replicas, the canary's share is w*N / (w*N + N*(100-w)) = w%."""
    if not 0 <= weight <= 100 or replicas < 1:
        raise ValueError(f"weight {weight}% over {replicas} replicas")
    if weight == 0:
        return Weights(1, 0)
    return Weights(100 - weight, weight * replicas)
