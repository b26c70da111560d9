"""Kubernetes readiness: the common ground of kube-score, Polaris and kube-linter."""

from __future__ import annotations

import re
from collections.abc import Iterable

from policies.core import (
    APP,
    CONTAINER,
    CRITICAL,
    DEPLOYMENT,
    GATEWAY,
    HIGH,
    HPA,
    MEDIUM,
    POD_OWNERS,
    SERVICE,
    WORKLOADS,
    Props,
    component,
    containers,
    pod_spec,
    resource_policy,
)

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
IMAGE_ANNOTATION = "living-codex.io/image-configured"
IMMUTABLE_TAG = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.\-]+)?$")
MIN_PRODUCTION_REPLICAS = 3
PRIVATE_REGISTRIES = ("ghcr.io/",)  # where the pipeline pushes: private packages unless made public


@resource_policy(
    "resources-requests-and-limits",
    "Every container declares CPU and memory requests and limits.",
    HIGH,
    "Set resources.requests and resources.limits for cpu and memory.",
    POD_OWNERS,
)
def requests_and_limits(resource_type: str, props: Props) -> Iterable[str]:
    for container in containers(props):
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(kind) or {}).get(resource):
                    yield f"container {container.get('name')}: no {resource} {kind[:-1]}"


@resource_policy(
    "liveness-and-readiness-probes",
    "Every container has liveness and readiness probes.",
    HIGH,
    "Add livenessProbe and readinessProbe (the app: /health/live, /health/ready).",
    WORKLOADS,
)
def probes(resource_type: str, props: Props) -> Iterable[str]:
    for container in pod_spec(props).get("containers", []) or []:
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                yield f"container {container.get('name')}: no {probe}"


@resource_policy(
    "pinned-image",
    "Images are pinned: no latest; an immutable version tag or digest.",
    HIGH,
    "Use an image like registry/app:1.4.2 or registry/app@sha256:<digest>.",
    (*POD_OWNERS, CONTAINER),
)
def pinned_image(resource_type: str, props: Props) -> Iterable[str]:
    images = (
        [(str(props.get("name")), str(props.get("image", "")))]
        if resource_type == CONTAINER
        else [(str(c.get("name")), str(c.get("image", ""))) for c in containers(props)]
    )
    configured = (props.get("metadata", {}).get("annotations") or {}).get(IMAGE_ANNOTATION)
    if configured:  # a tag resolved to a digest at preview: the tag itself must still be a version
        images.append(("(configured)", str(configured)))
    for name, image in images:
        container = {"name": name}
        if "@sha256:" in image or IMAGE_ID.fullmatch(image):  # a digest, or a local build's image id
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag:
            yield f"container {container.get('name')}: image {image} has no tag"
        elif tag == "latest":
            yield f"container {container.get('name')}: image {image} is tagged latest"
        elif not IMMUTABLE_TAG.match(tag) and not re.match(r"^v?\d+\.\d+(\.\d+)?[-.]", tag):
            yield f"container {container.get('name')}: image tag {tag} is not an immutable version"


@resource_policy(
    "images-by-digest",
    "Every container runs an exact image (@sha256:<digest>): a re-pushed tag never changes what runs.",
    HIGH,
    "Leave third-party images to infra/images.py (the program resolves their tags at preview), or pin "
    "name:tag@sha256:<digest> there with scripts/pin-images.sh; the app runs the promoted digest.",
    (*POD_OWNERS, CONTAINER),
)
def images_by_digest(resource_type: str, props: Props) -> Iterable[str]:
    images = (
        [(str(props.get("name")), str(props.get("image", "")))]
        if resource_type == CONTAINER
        else [(str(c.get("name")), str(c.get("image", ""))) for c in containers(props)]
    )
    for name, image in images:
        if not (DIGEST.search(image) or IMAGE_ID.fullmatch(image)):  # a digest, or a local build's image id
            yield f"container {name}: image {image} has no @sha256 digest"


@resource_policy(
    "restricted-security-context",
    "Containers run as non-root, read-only, without privilege escalation or capabilities.",
    HIGH,
    "Set runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation: false and capabilities.drop: [ALL].",
    POD_OWNERS,
)
def restricted(resource_type: str, props: Props) -> Iterable[str]:
    pod = pod_spec(props).get("securityContext") or {}
    for container in containers(props):
        name, security = container.get("name"), container.get("securityContext") or {}
        if not (security.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            yield f"container {name}: runAsNonRoot is not set"
        if not security.get("readOnlyRootFilesystem"):
            yield f"container {name}: root filesystem is writable"
        if security.get("allowPrivilegeEscalation") is not False:
            yield f"container {name}: privilege escalation is allowed"
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            yield f"container {name}: capabilities are not all dropped"
        if security.get("privileged"):
            yield f"container {name}: runs privileged"


@resource_policy(
    "no-host-namespaces",
    "Pods share no host network, PID or IPC namespace.",
    HIGH,
    "Remove hostNetwork, hostPID and hostIPC.",
    POD_OWNERS,
)
def host_namespaces(resource_type: str, props: Props) -> Iterable[str]:
    pod = pod_spec(props)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"{field} is on"


@resource_policy(
    "production-replicas",
    f"The app runs at least {MIN_PRODUCTION_REPLICAS} replicas and its autoscaler never goes lower.",
    HIGH,
    f"Set living-codex:replicas and autoscaling.minReplicas to {MIN_PRODUCTION_REPLICAS} or more.",
    (DEPLOYMENT, HPA),
)
def production_replicas(resource_type: str, props: Props) -> Iterable[str]:
    if resource_type == DEPLOYMENT and component(props) == APP and "replicas" in props.get("spec", {}):
        replicas = props["spec"]["replicas"]  # absent: the autoscaler owns the count (checked below)
        if replicas < MIN_PRODUCTION_REPLICAS:
            yield f"the app Deployment has {replicas} replicas"
    if resource_type == HPA and props.get("spec", {}).get("scaleTargetRef", {}).get("name") == APP:
        minimum = props["spec"].get("minReplicas", 1)
        if minimum < MIN_PRODUCTION_REPLICAS:
            yield f"the app autoscaler may scale down to {minimum}"


@resource_policy(
    "app-image-by-digest",
    "The production app runs an exact image: repository@sha256:<digest>, never a movable tag.",
    CRITICAL,
    "Let the pipeline set living-codex:image to the pushed digest, or keep a published tag (resolved at preview).",
    (DEPLOYMENT,),
)
def app_image_by_digest(resource_type: str, props: Props) -> Iterable[str]:
    if component(props) != APP:
        return
    for container in containers(props):
        if not DIGEST.search(str(container.get("image", ""))):
            yield f"container {container.get('name')}: image {container.get('image')} has no @sha256 digest"


@resource_policy(
    "private-image-pull-credentials",
    "The app's pods can pull its private image: GHCR packages are private, so the pods name a pull secret.",
    CRITICAL,
    "Set living-codex:registry {server: ghcr.io, username: ...} and the secret living-codex:registryPassword.",
    (DEPLOYMENT,),
)
def private_image_pull_credentials(resource_type: str, props: Props) -> Iterable[str]:
    if component(props) != APP:
        return
    private = [c for c in containers(props) if str(c.get("image", "")).startswith(PRIVATE_REGISTRIES)]
    if private and not pod_spec(props).get("imagePullSecrets"):
        name, image = private[0].get("name"), private[0].get("image")
        yield f"container {name}: image {image} is private and the pod has no imagePullSecrets"


@resource_policy(
    "explicit-kubernetes-context",
    "The Kubernetes provider names its cluster: never whatever kubectl context is current.",
    CRITICAL,
    "Set kubernetes:context (or kubernetes:kubeconfig) in the stack: pulumi config set kubernetes:context <name>.",
    (KUBERNETES_PROVIDER,),
)
def explicit_context(resource_type: str, props: Props) -> Iterable[str]:
    if not (props.get("context") or props.get("kubeconfig")):
        yield "the Kubernetes provider has no context or kubeconfig: it would use the current kubectl context"


@resource_policy(
    "service-exposure",
    "No NodePort; a LoadBalancer only for the gateway.",
    MEDIUM,
    "Use ClusterIP; expose traffic through the gateway.",
    (SERVICE,),
)
def service_exposure(resource_type: str, props: Props) -> Iterable[str]:
    kind = props.get("spec", {}).get("type", "ClusterIP")
    if kind == "NodePort":
        yield "type NodePort opens a port on every node"
    if kind == "LoadBalancer" and component(props) != GATEWAY:
        yield f"{component(props) or 'this service'} is a LoadBalancer; only the gateway may be"
    if kind == "LoadBalancer" and props["spec"].get("externalTrafficPolicy") != "Local":
        yield "the LoadBalancer is not externalTrafficPolicy: Local: clients arrive as node addresses"


POLICIES = [
    requests_and_limits,
    probes,
    pinned_image,
    images_by_digest,
    restricted,
    host_namespaces,
    production_replicas,
    app_image_by_digest,
    private_image_pull_credentials,
    explicit_context,
    service_exposure,
]
