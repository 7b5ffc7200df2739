"""The Helm chart: lint, render and validate against the Kubernetes 1.30 schemas for each values set,
and check what the rendered manifests say (probes, security context, catalog and TLS mounts, flags,
one metrics port per worker).

kubernetes-validate knows only built-in kinds, so the ServiceMonitor (a prometheus-operator CRD)
is left out of its input and checked here field by field against the Service it selects.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scopesvc.catalog import files as catalog_files
from scopesvc.cli import build_parser
from scopesvc.ops.config import resolve
from scopesvc.server import workers

from .deploy_helpers import ROOT, tool
from .ops_helpers import running

CHART = ROOT / "helm" / "scopesvc"
VALUES = {"defaults": []} | {p.name.removesuffix("-values.yaml"): [p] for p in sorted((CHART / "ci").glob("*.yaml"))}
CRD_KINDS = {"ServiceMonitor"}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def render(*value_files: Path, chart: Path = CHART, sets: tuple[str, ...] = ()) -> str:
    args = [f"--values={f}" for f in value_files] + [f"--set={s}" for s in sets]
    return helm("template", "gw", str(chart), "--namespace=edge", *args).stdout


def manifests(text: str) -> dict[str, dict]:
    """Rendered documents by kind (each kind appears once in this chart)."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "a kind rendered twice"
    return by_kind


def pod(docs: dict[str, dict]) -> dict:
    return docs["Deployment"]["spec"]["template"]["spec"]


def scopesvc_container(docs: dict[str, dict]) -> dict:
    return next(c for c in pod(docs)["containers"] if c["name"] == "scopesvc")


def flags(docs: dict[str, dict]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in scopesvc_container(docs)["args"][1:])


def metrics_ports(ports: list[dict], key: str) -> dict[str, int]:
    """The metrics ports (metrics, metrics-1, ...) of a container's or Service's port list, by name."""
    return {p["name"]: p[key] for p in ports if p["name"] == "metrics" or p["name"].startswith("metrics-")}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, dict]]:
    return {name: manifests(render(*files)) for name, files in VALUES.items()}


def test_values_sets_cover_the_deployments():
    assert set(VALUES) >= {"defaults", "sidecar", "autoscaling", "tls", "existing-configmap", "servicemonitor",
                           "workers", "observability", "tokens"}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_helm_lint_strict(name):
    helm("lint", "--strict", str(CHART), *[f"--values={f}" for f in VALUES[name]])


def test_manifests_valid_for_kubernetes_1_30(rendered, tmp_path):
    files = []
    for name, docs in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all([d for kind, d in docs.items() if kind not in CRD_KINDS]))
        files.append(str(path))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", "1.30.0", *files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = sum(len([k for k in docs if k not in CRD_KINDS]) for docs in rendered.values())
    assert result.stdout.count(" passed for resource ") == checked, result.stdout


@pytest.mark.parametrize("name", sorted(VALUES))
def test_args_are_serve_flags(rendered, name):
    """The chart's container args parse as `scopesvc serve` options and validate together."""
    container = scopesvc_container(rendered[name])
    assert container["args"][0] == "serve" and "command" not in container  # the image's ENTRYPOINT runs
    try:
        args = build_parser().parse_args(container["args"])
    except SystemExit:
        pytest.fail(f"scopesvc serve rejects {container['args']}")
    config = resolve(args, environ={})
    assert config.host == "0.0.0.0" and config.metrics_host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (ports["grpc"], ports["metrics"]) == (config.port, config.metrics_port)
    assert ports.get("forward-auth", 0) == config.forward_auth_port
    # worker i serves metrics on metrics_port + i; the container declares exactly those ports
    assert sorted(metrics_ports(container["ports"], "containerPort").values()) == \
        [config.metrics_port + i for i in range(config.workers)]
    if config.workers > 1:
        workers.check(config)  # what `scopesvc serve` checks before it starts the workers


@pytest.mark.parametrize("name", sorted(VALUES))
def test_hardened_pod(rendered, name):
    spec = pod(rendered[name])
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    context = scopesvc_container(rendered[name])["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsNonRoot"] is True
    assert spec["terminationGracePeriodSeconds"] > float(flags(rendered[name])["grace"]) + 1
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    labels = rendered[name]["Deployment"]["spec"]["selector"]["matchLabels"]
    assert all(c["labelSelector"]["matchLabels"] == labels for c in spec["topologySpreadConstraints"])


def test_defaults_probe_the_grpc_health_service(rendered):
    docs = rendered["defaults"]
    container = scopesvc_container(docs)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": 50051}, probe
    assert "catalog" not in flags(docs) and "volumes" not in pod(docs)  # the image's embedded catalog
    assert flags(docs)["workers"] == "1"
    assert docs["Deployment"]["spec"]["replicas"] == 2
    assert docs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    annotations = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9464", "prometheus.io/path": "/metrics"}
    service_ports = {p["name"]: p for p in docs["Service"]["spec"]["ports"]}
    assert service_ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    assert {"HorizontalPodAutoscaler", "ServiceMonitor", "ConfigMap"}.isdisjoint(docs)


def catalog_mount(docs: dict[str, dict]) -> tuple[dict, dict]:
    """The catalog's volume and mount; the mount is the whole directory so ConfigMap updates arrive."""
    catalog = Path(flags(docs)["catalog"])
    mount = next(m for m in scopesvc_container(docs)["volumeMounts"] if m["mountPath"] == str(catalog.parent))
    assert "subPath" not in mount and "subPathExpr" not in mount and mount["readOnly"] is True
    volume = next(v for v in pod(docs)["volumes"] if v["name"] == mount["name"])
    return volume, mount


def test_inline_catalog_is_a_configmap_directory(rendered, tmp_path):
    docs = rendered["sidecar"]
    volume, _ = catalog_mount(docs)
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    key = Path(flags(docs)["catalog"]).name
    path = tmp_path / key
    path.write_text(docs["ConfigMap"]["data"][key])
    assert catalog_files.load(str(path)).name == "tasks-api"


def test_existing_configmap(rendered):
    docs = rendered["existing-configmap"]
    volume, _ = catalog_mount(docs)
    assert volume == {"name": "catalog", "configMap": {"name": "api-scopes"}}
    assert flags(docs)["catalog"].endswith("/catalog.yaml") and "ConfigMap" not in docs


def test_autoscaling(rendered):
    docs = rendered["autoscaling"]
    hpa = docs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": docs["Deployment"]["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert "replicas" not in docs["Deployment"]["spec"]  # the HPA owns the count
    assert {c["whenUnsatisfiable"] for c in pod(docs)["topologySpreadConstraints"]} == {"DoNotSchedule"}


def test_sidecar_shares_a_unix_socket_with_the_gateway(rendered):
    docs = rendered["sidecar"]
    socket = Path(flags(docs)["uds"])
    containers = {c["name"]: c for c in pod(docs)["containers"]}
    assert set(containers) == {"scopesvc", "envoy"}
    for container in containers.values():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["scopesvc-socket"] == str(socket.parent), container["name"]
    volumes = {v["name"]: v for v in pod(docs)["volumes"]}
    assert "emptyDir" in volumes["scopesvc-socket"] and "envoy-config" in volumes
    assert {p["name"] for p in docs["Service"]["spec"]["ports"]} == {"grpc", "metrics", "http"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert containers["scopesvc"][probe]["grpc"] == {"port": 50051}


def test_tls_from_a_secret(rendered):
    docs = rendered["tls"]
    args = flags(docs)
    secret_dir = Path(args["tls-cert"]).parent
    assert (Path(args["tls-cert"]).name, Path(args["tls-key"]).name, Path(args["tls-client-ca"]).name) == \
        ("tls.crt", "tls.key", "ca.crt")
    mount = next(m for m in scopesvc_container(docs)["volumeMounts"] if m["mountPath"] == str(secret_dir))
    assert "subPath" not in mount  # a renewed certificate reaches the pod
    volume = next(v for v in pod(docs)["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "scopesvc-tls"
    assert next(p for p in docs["Service"]["spec"]["ports"] if p["name"] == "grpc")["appProtocol"] == "grpc"


def test_tls_probe_command_asks_the_health_service(rendered, tmp_path):
    """Kubernetes' gRPC probes cannot speak TLS; under TLS the chart's exec probe asks over the Unix socket.
    Run that exact command (socket path moved into a temp dir) against a real server and a stopped one."""
    docs = rendered["tls"]
    container = scopesvc_container(docs)
    command = container["readinessProbe"]["exec"]["command"]
    assert all(container[p]["exec"]["command"] == command for p in ("startupProbe", "livenessProbe"))
    socket = flags(docs)["uds"]
    assert socket in command[-1]
    local = tmp_path / "scopesvc.sock"
    assert command[0] == "python"  # the image's venv is first on PATH; here, the interpreter running the tests
    probe = [sys.executable, *command[1:-1], command[-1].replace(socket, str(local))]
    with running(host="", uds=str(local)):
        assert subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    assert subprocess.run(probe, capture_output=True, timeout=30).returncode != 0  # nobody answers: not ready


def test_service_monitor_selects_the_metrics_port(rendered):
    docs = rendered["servicemonitor"]
    monitor = docs["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = docs["Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint, = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    assert "annotations" not in docs["Deployment"]["spec"]["template"]["metadata"]
    container = scopesvc_container(docs)
    assert container["args"][-2:] == ["--scope-header=x-verified-scopes", "--cache-size=50000"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "scopesvc-decision-log"


def test_workers_each_get_a_metrics_port_and_a_scrape_endpoint(rendered):
    docs = rendered["workers"]
    assert flags(docs)["workers"] == "3"
    expected = {"metrics": 9464, "metrics-1": 9465, "metrics-2": 9466}
    container_ports = scopesvc_container(docs)["ports"]
    assert metrics_ports(container_ports, "containerPort") == expected
    names = [p["name"] for p in container_ports]
    assert len(names) == len(set(names)) and all(len(n) <= 15 for n in names)  # IANA_SVC_NAME limits
    service_ports = docs["Service"]["spec"]["ports"]
    assert metrics_ports(service_ports, "port") == expected
    assert metrics_ports(service_ports, "targetPort") == {name: name for name in expected}
    monitor = docs["ServiceMonitor"]
    endpoints = monitor["spec"]["endpoints"]
    assert [e["port"] for e in endpoints] == list(expected)
    assert all(e["path"] == "/metrics" for e in endpoints)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= docs["Service"]["metadata"]["labels"].items()
    assert scopesvc_container(docs)["resources"]["requests"]["cpu"] == "3"  # about a core per worker


def test_workers_scrape_annotations_name_the_first_worker():
    """Pod annotations can name one port: with workers they still point at worker 0's declared port."""
    docs = manifests(render(CHART / "ci" / "workers-values.yaml", sets=("metrics.podAnnotations=true",)))
    annotations = docs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    ports = metrics_ports(scopesvc_container(docs)["ports"], "containerPort")
    assert annotations["prometheus.io/port"] == str(ports["metrics"]) == "9464"
    assert len(ports) == 3


@pytest.mark.parametrize("sets, complaint", [
    (("sidecar.enabled=true",), "workers > 1 needs sidecar.transport tcp"),
    (("tls.enabled=true", "tls.secretName=scopesvc-tls"), "workers > 1 cannot be used with tls.enabled"),
    (("server.forwardAuthPort=9191",), "workers > 1 cannot be used with server.forwardAuthPort"),
    (("ports.grpc=9466",), "ports.grpc: 9466 is one of the workers' metrics ports 9464..9466"),
    (("ports.metrics=65534",), "ports.metrics: the metrics ports of 3 workers, 65534..65536, go past 65535"),
    (("extraArgs[0]=--workers=4",), "extraArgs: set the worker count with the `workers` value"),
    (("extraEnv[0].name=SCOPESVC_WORKERS", "extraEnv[0].value=4"), "extraEnv: set the worker count"),
])
def test_workers_refuse_what_one_process_must_own(sets, complaint):
    """What `scopesvc serve --workers` refuses (a Unix socket, forward-auth) fails the render instead."""
    result = helm("template", "gw", str(CHART), "--set=workers=3", *[f"--set={s}" for s in sets], check=False)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


def test_workers_allow_a_tcp_sidecar():
    docs = manifests(render(CHART / "ci" / "sidecar-values.yaml", sets=("workers=2", "sidecar.transport=tcp")))
    assert "uds" not in flags(docs) and flags(docs)["workers"] == "2"
    assert metrics_ports(docs["Service"]["spec"]["ports"], "port") == {"metrics": 9464, "metrics-1": 9465}


@pytest.mark.parametrize("sets, complaint", [
    (("replicaCount=two",), "replicaCount"),
    (("tls.enabled=true",), "secretName"),
    (("server.logFormat=xml",), "logFormat"),
    (("sidecar.transport=tcp6",), "transport"),
    (("ports.grpc=70000",), "grpc"),
    (("extraArgs[0]=catalog=/x",), "extraArgs"),
    (("replicas=3",), "replicas"),
    (("workers=0",), "workers"),
    (("workers=two",), "workers"),
    (("tracing.protocol=udp",), "protocol"),
    (("tracing.samplerArg=2",), "samplerArg"),
    (("tracing.endpoint=otel:4317",), "endpoint"),
    (("server.authzen.pdpUrl=ftp://pdp",), "pdpUrl"),
    (("server.authzen.enabled=true",), "set server.forwardAuthPort"),
    (("tracing.enabled=true",), "give tracing.endpoint"),
])
def test_schema_rejects_bad_values(sets, complaint):
    result = helm("template", "gw", str(CHART), *[f"--set={s}" for s in sets], check=False)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr


def test_tracing_and_authzen_are_switched_on_by_environment(rendered):
    """Off by default (no environment at all); on, the OTEL_* and SCOPESVC_* variables `scopesvc serve` reads."""
    assert "env" not in scopesvc_container(rendered["defaults"])
    docs = rendered["observability"]
    env = {e["name"]: e.get("value") for e in scopesvc_container(docs)["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == ("parentbased_traceidratio", "0.01")
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc" and env["OTEL_SERVICE_NAME"] == "scopesvc"
    assert "OTEL_EXPORTER_OTLP_HEADERS" in env  # extraEnv comes after, so it can add or override
    config = resolve(build_parser().parse_args(scopesvc_container(docs)["args"]),
                     environ={k: v for k, v in env.items() if v is not None})
    assert config.tracing and config.authzen and config.authzen_pdp_url == "https://pdp.example.com"
    ports = {p["name"]: p for p in docs["Service"]["spec"]["ports"]}
    assert ports["authzen"]["port"] == 8080 and ports["authzen"]["targetPort"] == "forward-auth"
    assert "authzen" not in {p["name"] for p in rendered["servicemonitor"]["Service"]["spec"]["ports"]}


def test_notes_say_how_to_point_gateways_at_it(tmp_path):
    """helm template does not print NOTES.txt: render it through tpl in a copy of the chart."""
    chart = tmp_path / "scopesvc"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "NOTES.txt")
    (chart / "templates" / "notes.yaml").write_text('notes: {{ tpl (.Files.Get "NOTES.txt") . | toJson }}\n')

    def notes(*files: Path, sets: tuple[str, ...] = ()) -> str:
        return yaml.safe_load(helm("template", "gw", str(chart), "--namespace=edge", "--show-only=templates/notes.yaml",
                                   *[f"--values={f}" for f in files], *[f"--set={s}" for s in sets]).stdout)["notes"]

    central = notes()
    assert "gw-scopesvc.edge.svc.cluster.local:50051" in central
    for gateway in ("Envoy", "Istio", "NGINX"):
        assert f"* {gateway}:" in central
    assert "envoyExtAuthzGrpc: {service: gw-scopesvc.edge.svc.cluster.local, port: 50051" in central
    sidecar = notes(CHART / "ci" / "sidecar-values.yaml")
    assert "a sidecar beside envoy" in sidecar and "pipe: {path: /var/run/scopesvc/scopesvc.sock}" in sidecar
    monitored = notes(CHART / "ci" / "servicemonitor-values.yaml")
    assert "server gw-scopesvc.edge.svc.cluster.local:9191;" in monitored
    assert "workers" not in central
    assert "ports 9464..9466 (the ServiceMonitor scrapes them all)" in notes(CHART / "ci" / "workers-values.yaml")
    assert "metrics.serviceMonitor.enabled=true to scrape every worker" in notes(sets=("workers=3",))


def test_token_issuers_become_jwt_issuers_with_secrets_as_mounted_files(rendered):
    """Every file an issuer names is mounted read-only from the ConfigMap or Secret the values reference."""
    docs = rendered["tokens"]
    container = scopesvc_container(docs)
    config = resolve(build_parser().parse_args(container["args"]), environ={})
    assert config.scope_source == "bearer"
    first, second = config.jwt_issuers
    assert first["introspection_endpoint"] == "discover" and first["client_id"] == "scopesvc"
    assert second["scope_claim"] == "realm_access.roles" and second["algorithms"] == ["ES256"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(docs)["volumes"]}
    for path in (first["client_secret_file"], second["jwks_file"]):
        directory, name = path.rsplit("/", 1)
        mount = mounts[directory]
        assert mount["readOnly"]
        source = volumes[mount["name"]]
        assert [item["path"] for item in (source.get("secret") or source["configMap"])["items"]] == [name]
    assert volumes[mounts[first["client_secret_file"].rsplit("/", 1)[0]]["name"]]["secret"]["secretName"] == \
        "scopesvc-introspection"


@pytest.mark.parametrize("sets, complaint", [
    (("tokens.issuers[0].issuer=https://a", "tokens.issuers[0].audiences[0]=x",
      "tokens.issuers[0].introspection.clientId=c", "tokens.issuers[0].introspection.clientSecret=inline"),
     "clientSecret"),
    (("tokens.issuers[0].issuer=https://a",), "audiences"),
    (("tokens.scopeSource=cookie",), "scopeSource"),
    (("tokens.issuers[0].issuer=https://a", "tokens.issuers[0].audiences[0]=x",
      "tokens.issuers[0].algorithms[0]=none"), "algorithms"),
])
def test_schema_rejects_inline_secrets_and_unsafe_token_values(sets, complaint):
    result = helm("template", "gw", str(CHART), *[f"--set={s}" for s in sets], check=False)
    assert result.returncode != 0 and complaint in result.stderr, result.stderr
