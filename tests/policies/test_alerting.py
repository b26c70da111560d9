from __future__ import annotations

import yaml

from infra.mock_runtime import Declaration
from policies import alerting
from policies.core import CONFIGMAP
from tests.policies.conftest import Props, check, mutated, props_of

NOBODY = ["no routed receiver has an integration: production alerts reach nobody"]


def _config(props: Props) -> dict[str, object]:
    return dict(yaml.safe_load(props["data"]["alertmanager.yml"]))


def _with(props: Props, config: dict[str, object]) -> Props:
    return mutated(props, lambda p: p["data"].update({"alertmanager.yml": yaml.safe_dump(config)}))


def test_production_routes_alerts_to_a_receiver_with_an_integration(production: Declaration) -> None:
    props = props_of(production, CONFIGMAP, "alertmanager-config")
    assert check(alerting.alert_receiver, CONFIGMAP, props) == []
    config = _config(props)
    bare = {**config, "receivers": [{"name": "default"}], "route": {"receiver": "default"}}
    assert check(alerting.alert_receiver, CONFIGMAP, _with(props, bare)) == NOBODY
    # A receiver with an integration that no route reaches delivers nothing either.
    unrouted = {**config, "route": {"receiver": "default"}}
    assert check(alerting.alert_receiver, CONFIGMAP, _with(props, unrouted)) == NOBODY


def test_other_config_maps_are_not_judged(production: Declaration) -> None:
    assert check(alerting.alert_receiver, CONFIGMAP, props_of(production, CONFIGMAP, "gateway-config")) == []
