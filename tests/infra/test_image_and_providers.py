"""Production runs an exact image (by digest), and every resource goes through an
explicit provider configured from the stack, whose config is read the way the engine passes it."""

from __future__ import annotations

import re

from pulumi.runtime import config as runtime_config

from infra.mock_runtime import Declaration
from infra.spec import spec_from_config
from infra.stack_config import ENCRYPTED, stack_config
from policies import kubernetes
from tests.infra.conftest import Variant, deployment
from tests.policies.conftest import check, mutated

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DIGEST = "sha256:" + "ab" * 32


def _app_image(declaration: Declaration) -> str:
    return str(deployment(declaration, "app")["spec"]["template"]["spec"]["containers"][0]["image"])


def test_production_runs_the_promoted_digest(production: Declaration) -> None:
    image = _app_image(production)
    assert image == production.spec.image, image
    assert re.fullmatch(r"ghcr\.io/living-codex/living-codex@sha256:[0-9a-f]{64}", image), image
    assert not any("living-codex/living-codex:" in p for p in production.environment.prerequisites)  # type: ignore[union-attr]


def test_a_tag_is_resolved_to_its_digest_at_preview(variant: Variant) -> None:
    tagged = "ghcr.io/living-codex/living-codex:1.0.0"
    declaration = variant("production", append=f"  living-codex:image: {tagged}\n")
    assert re.fullmatch(rf"{re.escape(tagged)}@sha256:[0-9a-f]{{64}}", _app_image(declaration))
    # A real preview fails in the registry when nothing published the tag.
    assert any(f"{tagged} published" in p for p in declaration.environment.prerequisites)  # type: ignore[union-attr]


def test_a_digest_from_the_pipeline_is_deployed_as_given(variant: Variant) -> None:
    pushed = f"ghcr.io/living-codex/living-codex@{DIGEST}"
    declaration = variant("production", append=f"  living-codex:image: {pushed}\n")
    assert _app_image(declaration) == pushed
    assert not any("living-codex/living-codex:" in p for p in declaration.environment.prerequisites)  # type: ignore[union-attr]


def test_the_policy_refuses_a_production_app_without_a_digest(production: Declaration) -> None:
    props = deployment(production, "app")
    assert check(kubernetes.app_image_by_digest, DEPLOYMENT, props) == []
    tagged = mutated(props, lambda p: p["spec"]["template"]["spec"]["containers"][0].update(image="codex:1.0.0"))
    assert check(kubernetes.app_image_by_digest, DEPLOYMENT, tagged) == [
        "container app: image codex:1.0.0 has no @sha256 digest"
    ]


def _providers(declaration: Declaration) -> dict[str, str]:
    return {r.urn: r.type for r in declaration.custom() if r.type.startswith("pulumi:providers:")}


def test_every_resource_has_an_explicit_provider(staging: Declaration, production: Declaration) -> None:
    for declaration, package in ((staging, "docker"), (production, "kubernetes")):
        providers = _providers(declaration)
        for resource in declaration.custom():
            if resource.type.startswith(("docker:", "kubernetes:")):
                urn = resource.provider.rsplit("::", 1)[0]
                assert providers.get(urn) == f"pulumi:providers:{resource.type.split(':')[0]}", resource.name
        assert f"pulumi:providers:{package}" in providers.values()


def test_providers_are_configured_from_the_stack(production: Declaration, variant: Variant) -> None:
    provider = production.one("pulumi:providers:kubernetes", "kubernetes")
    assert provider.inputs["context"] == "living-codex-production"
    staging = variant("staging", append="  docker:host: ssh://deploy@staging.example.net\n")
    assert staging.one("pulumi:providers:docker", "docker").inputs["host"] == "ssh://deploy@staging.example.net"


def test_an_encrypted_provider_setting_is_read_as_a_secret(variant: Variant) -> None:
    declaration = variant("production", append="  kubernetes:kubeconfig:\n    secure: v1:abc==\n")
    provider = declaration.one("pulumi:providers:kubernetes", "kubernetes").inputs
    assert provider["kubeconfig"] == "decrypted-kubernetes:kubeconfig-by-the-engine"  # the mock's decryption


def test_the_policy_refuses_a_provider_on_the_current_context(production: Declaration) -> None:
    provider = dict(production.one("pulumi:providers:kubernetes", "kubernetes").inputs)
    assert check(kubernetes.explicit_context, "pulumi:providers:kubernetes", provider) == []
    provider.pop("context")
    assert check(kubernetes.explicit_context, "pulumi:providers:kubernetes", provider) == [
        "the Kubernetes provider has no context or kubeconfig: it would use the current kubectl context"
    ]


def test_config_is_read_as_the_engine_passes_it() -> None:
    """--config and ESC values arrive in the runtime's config, JSON-encoded, secrets flagged by key."""
    runtime_config.set_all_config(
        {
            "living-codex:platform": "kubernetes",
            "living-codex:podNetwork": "10.244.0.0/16",
            "living-codex:image": f"codex@{DIGEST}",
            "living-codex:replicas": "4",
            "living-codex:autoscaling": '{"minReplicas": 4, "maxReplicas": 8}',
            "living-codex:jwtSecret": "from-esc-never-in-the-spec",
            "kubernetes:context": "from-esc",
        },
        ["living-codex:jwtSecret"],
    )
    try:
        config = stack_config()
        spec = spec_from_config("esc", config, "pulumi config")
    finally:
        runtime_config.set_all_config({}, [])
    assert config["living-codex:jwtSecret"] == ENCRYPTED
    assert spec.replicas == 4 and spec.autoscaling.maxReplicas == 8
    assert spec.providers == {"kubernetes:context": "from-esc"}
    assert "jwtSecret" in spec.secrets and spec.plaintext_secrets == ()
    assert "from-esc-never-in-the-spec" not in spec.model_dump_json()
