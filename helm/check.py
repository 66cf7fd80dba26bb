#!/usr/bin/env python3
"""Checks the Helm chart in helm/symbiose with Helm's own engine, offline.

helm-python-sdk binds Helm's Go SDK (no helm binary, no cluster): this script lints the chart,
renders it with several sets of values, parses the manifests and checks what an operator
relies on (a workload and a Service per service, probes, resources, the environment the
services' configuration needs, the signing key, the disruption budgets, the autoscaler), then
checks that wrong values are refused when rendering. It prints every failure and exits 1 if
there was one.

Needs: helm-python-sdk and PyYAML (`.ci/run` installs pinned versions into a virtualenv).
"""

from __future__ import annotations

import copy
import re
import sys
import time
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

HELM_DIR = Path(__file__).resolve().parent
CHART_DIR = HELM_DIR / "symbiose"
PRODUCTION_VALUES = CHART_DIR / "ci" / "production-values.yaml"
CONFIG_RS = HELM_DIR.parent / "libs" / "kit" / "src" / "config.rs"

RELEASE = "symbiose"
NAMESPACE = "symbiose"
STATEFUL_SERVICES = ("listings", "matching", "logistics", "settlement", "passports")
SERVICES = (*STATEFUL_SERVICES, "catalog")
# The oldest Kubernetes with gRPC probes on by default.
KUBE_VERSION_MIN = "v1.24.0"
# Variables the chart sets that are not settings of libs/kit/src/config.rs.
CHART_ONLY_VARIABLES = {"RUST_LOG", "SYMBIOSE_EVENTSTORE_CONNECTION_STRING"}
# What `helm install --set nats.url=... --set signingKey.existingSecret=...` adds to the
# defaults: the two values the chart cannot default.
REQUIRED_VALUES: dict[str, Any] = {
    "nats": {"url": "nats://nats.messaging.svc:4222"},
    "signingKey": {"existingSecret": "symbiose-signing-key"},
}


class Failures:
    """Collects failures with the render they came from, so one run shows them all."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.checks = 0

    def check(self, condition: bool, context: str, message: str) -> bool:
        self.checks += 1
        if not condition:
            self.messages.append(f"{context}: {message}")
        return condition


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`, recursively, as several `-f` files and `--set` combine."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def config_variables() -> set[str]:
    """The settings the services read, from the constants of libs/kit/src/config.rs."""
    text = CONFIG_RS.read_text(encoding="utf-8")
    return set(re.findall(r'pub const [A-Z_]+: &str = "(SYMBIOSE_[A-Z_]+)";', text))


def render(chart: helm.Chart, values: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The chart's objects by (kind, name), from Helm's render of `values`."""
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if not document:
                continue
            key = (document["kind"], document["metadata"]["name"])
            if key in objects:
                raise ValueError(f"{path}: {key[0]} {key[1]} is rendered twice")
            objects[key] = document
    return objects


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable.get("value", "") for variable in container.get("env", [])}


# The longest a service's start may take by its own rules, in seconds: listings' directory
# view (services/listings CATCH_UP_WAIT_MS); a service alone's revoked tokens then imports
# (services/symbiose/src/alone.rs, 600 s each); the catalog's rebuild.
START_WAIT_S = {"listings": 600, "matching": 1200, "logistics": 1200, "settlement": 1200, "passports": 1200,
                "catalog": 600}


def check_probe(failures: Failures, context: str, probe: Any, health_port: int) -> None:
    """A probe calls the health service on the plaintext health port, whatever the TLS: it
    answers only once the process serves, which a TCP check of the gRPC port would not tell."""
    if not failures.check(isinstance(probe, dict), context, "missing"):
        return
    failures.check(probe.get("grpc", {}).get("port") == health_port and "tcpSocket" not in probe, context,
                   f"expected a grpc probe on the health port {health_port}, got {probe}")


def check_render(failures: Failures, label: str, values: dict[str, Any], chart: helm.Chart,
                 settings: set[str]) -> set[str]:
    """Checks one render against the values it was given; returns the variables it set."""
    merged = chart.merge_values(values)
    try:
        objects = render(chart, values)
    except helm.HelmError as error:
        failures.check(False, label, f"rendering failed: {error}")
        return set()

    grpc_port = merged["ports"]["grpc"]
    health_port = merged["ports"]["health"]
    metrics_port = merged["ports"]["metrics"]
    web_port = merged["ports"]["web"]
    data_dir = merged["config"]["dataDir"]
    tls = merged["tls"]["enabled"]
    credentials_secret = merged["nats"]["credentials"]["existingSecret"]
    signing_key = merged["signingKey"]
    key_secret = signing_key["existingSecret"] or f"{RELEASE}-signing-key"
    autoscaling = merged["services"]["catalog"]["autoscaling"]["enabled"]
    seen_variables: set[str] = set()
    envs: dict[str, dict[str, str]] = {}

    for service in SERVICES:
        name = f"{RELEASE}-{service}"
        context = f"{label}: {service}"
        enabled = merged["services"][service]["enabled"]
        # On PostgreSQL and EventStoreDB the services that keep a store are replicated
        # Deployments over it; on the embedded store each is a StatefulSet of one.
        # On EventStoreDB the listings service keeps its vault's keys on its volume: one replica.
        replicated = service in STATEFUL_SERVICES and (merged["store"]["backend"] == "postgres" or (
            merged["store"]["backend"] == "eventstoredb" and service != "listings"))
        kind = "StatefulSet" if service in STATEFUL_SERVICES and not replicated else "Deployment"
        service_autoscaling = merged["services"][service].get("autoscaling", {}).get("enabled", False)
        workload = objects.get((kind, name))
        if not enabled:
            failures.check(workload is None and ("Service", name) not in objects, context,
                           "disabled, yet it has a workload or a Service")
            continue
        if not failures.check(workload is not None, context, f"no {kind} {name}"):
            continue
        spec = workload["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        selector = spec["selector"]["matchLabels"]
        failures.check(selector.items() <= pod_labels.items(), context,
                       "the workload's selector does not select its own pods")

        # The Service, with the gRPC port, selecting the pods.
        service_object = objects.get(("Service", name))
        if failures.check(service_object is not None, context, f"no Service {name}"):
            failures.check(service_object["spec"]["selector"].items() <= pod_labels.items(), context,
                           "the Service does not select the pods")
            ports = {port["name"]: port["port"] for port in service_object["spec"]["ports"]}
            failures.check(ports.get("grpc") == grpc_port, context,
                           f"the Service lacks the grpc port {grpc_port}: {ports}")
            # The passports' public pages: the web port, on their Service only.
            failures.check(ports.get("web") == (web_port if service == "passports" else None), context,
                           f"the web port {web_port} belongs on the passports Service only: {ports}")

        if replicated:
            failures.check(("StatefulSet", name) not in objects, context,
                           "replicated over a shared store, yet a StatefulSet is rendered too")
            if service_autoscaling:
                failures.check("replicas" not in spec, context,
                               "with autoscaling on, the Deployment must leave replicas to the HPA")
            else:
                failures.check(spec.get("replicas") == (merged["services"][service].get("replicas") or 2), context,
                               f"replicas differ from services.{service}.replicas (2 when empty)")
            rolling = spec.get("strategy", {}).get("rollingUpdate", {})
            failures.check(rolling.get("maxUnavailable") == 0 and rolling.get("maxSurge") == 1, context,
                           "a rollout must add a replica before it removes one")
            data = [volume for volume in pod["volumes"] if volume["name"] == "data"]
            failures.check(len(data) == 1 and "emptyDir" in data[0], context,
                           "a replica's data directory must be an emptyDir (the store is shared)")
        elif service in STATEFUL_SERVICES:
            failures.check(spec.get("replicas") == 1, context,
                           "a service with an embedded store must run exactly one replica")
            claims = [claim["metadata"]["name"] for claim in spec.get("volumeClaimTemplates", [])]
            failures.check(claims == ["data"], context, f"expected one volume claim `data`, got {claims}")
            failures.check(spec.get("serviceName") == f"{name}-headless"
                           and ("Service", f"{name}-headless") in objects, context,
                           "the StatefulSet's headless Service is missing")
        else:
            if autoscaling:
                failures.check("replicas" not in spec, context,
                               "with autoscaling on, the Deployment must leave replicas to the HPA")
            else:
                failures.check(spec.get("replicas") == merged["services"]["catalog"]["replicas"], context,
                               "replicas differ from services.catalog.replicas")
            data = [volume for volume in pod["volumes"] if volume["name"] == "data"]
            failures.check(len(data) == 1 and "emptyDir" in data[0], context,
                           "the catalog's data directory must be an emptyDir")

        failures.check(pod.get("enableServiceLinks") is False, context,
                       "service links would add SYMBIOSE_<SERVICE>_PORT variables to the environment")

        containers = pod["containers"]
        if not failures.check(len(containers) == 1, context, f"expected one container, got {len(containers)}"):
            continue
        container = containers[0]
        failures.check(container["command"] == [f"symbiose-{service}"], context,
                       f"expected the command symbiose-{service}, got {container['command']}")
        failures.check(container["imagePullPolicy"] == merged["image"]["pullPolicy"], context,
                       "imagePullPolicy is not image.pullPolicy")
        container_ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
        expected_ports = {"grpc": grpc_port, "health": health_port,
                          **({"metrics": metrics_port} if merged["metrics"]["enabled"] else {}),
                          **({"web": web_port} if service == "passports" else {})}
        failures.check(container_ports == expected_ports, context,
                       f"expected the ports {expected_ports}, got {container_ports}")

        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            check_probe(failures, f"{context}: {probe}", container.get(probe), health_port)
        # The startup budget outlasts the service's own longest start, so the kubelet never
        # restarts a pod that is about to serve (in a loop, with a slow NATS).
        startup = container.get("startupProbe") or {}
        budget = startup.get("failureThreshold", 0) * startup.get("periodSeconds", 0)
        wanted_budget = START_WAIT_S[service] + merged["probes"]["startup"]["marginSeconds"]
        failures.check(wanted_budget <= budget < wanted_budget + startup.get("periodSeconds", 0), context,
                       f"the startup budget is {budget} s, expected {wanted_budget} s (its longest start "
                       f"{START_WAIT_S[service]} s plus the margin)")
        # The pod stops taking calls only after its endpoints learnt it is NOT_SERVING, then its
        # calls in flight finish: the kubelet must wait for both.
        grace_ms = merged["config"]["shutdownDelayMs"] + merged["config"]["shutdownGraceMs"]
        wanted_grace = -(-grace_ms // 1000) + merged["config"]["terminationGraceMarginSeconds"]
        failures.check(pod.get("terminationGracePeriodSeconds") == wanted_grace, context,
                       f"terminationGracePeriodSeconds is {pod.get('terminationGracePeriodSeconds')}, expected "
                       f"{wanted_grace} (the shutdown delay and grace, rounded up, and the margin)")
        account = merged["serviceAccount"]
        wanted_account = (account["name"] or RELEASE) if account["create"] else (account["name"] or "default")
        failures.check(pod.get("serviceAccountName") == wanted_account
                       and pod.get("automountServiceAccountToken") is False, context,
                       f"the pods run as {pod.get('serviceAccountName')!r} (expected {wanted_account!r}), "
                       "without its token")
        spread = pod.get("topologySpreadConstraints", [])
        wants_spread = merged["topologySpread"]["enabled"] and kind == "Deployment"
        failures.check(bool(spread) == wants_spread, context,
                       "topology spread constraints belong on the Deployments' interchangeable replicas, "
                       f"when topologySpread.enabled: got {spread}")
        for constraint in spread:
            failures.check(constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
                           and constraint["topologyKey"] in merged["topologySpread"]["topologyKeys"], context,
                           f"a spread constraint does not count the service's own pods: {constraint}")

        resources = container.get("resources", {})
        for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            for key in keys:
                failures.check(key in resources.get(part, {}), context, f"no resources.{part}.{key}")

        # The environment the services' configuration needs.
        env = env_of(container)
        seen_variables |= set(env)
        expected_env = {
            "SYMBIOSE_DATA_DIR": data_dir,
            "SYMBIOSE_LISTEN_ADDR": f"{merged['config']['bindHost']}:{grpc_port}",
            "SYMBIOSE_METRICS_ADDR": (f"{merged['config']['bindHost']}:{metrics_port}"
                                      if merged["metrics"]["enabled"] else "off"),
            "SYMBIOSE_NATS_URL": merged["nats"]["url"],
            "SYMBIOSE_NATS_STREAM_REPLICAS": str(merged["nats"]["streamReplicas"]),
            "SYMBIOSE_LOG_FORMAT": merged["config"]["logFormat"],
            "SYMBIOSE_HEALTH_ADDR": f"{merged['config']['bindHost']}:{health_port}",
            "SYMBIOSE_SHUTDOWN_DELAY_MS": str(merged["config"]["shutdownDelayMs"]),
            "SYMBIOSE_TOKEN_TTL_DAYS": str(merged["config"]["tokenTtlDays"]),
        }
        # Matching reserves offers through the listings service's gRPC port, logistics has pallets
        # paid for through settlement's; the others call no one.
        scheme = "https" if tls else "http"
        listings_url = merged["config"]["listingsUrl"] or f"{scheme}://{RELEASE}-listings:{grpc_port}"
        expected_env["SYMBIOSE_LISTINGS_URL"] = listings_url if service in ("matching", "logistics") else None
        settlement_url = merged["config"]["settlementUrl"] or f"{scheme}://{RELEASE}-settlement:{grpc_port}"
        expected_env["SYMBIOSE_SETTLEMENT_URL"] = settlement_url if service == "logistics" else None
        # Calls to the other services under TLS: the CA to trust, and under mutual TLS the pod's
        # own certificate and key as the client's.
        calls = service in ("matching", "logistics")
        tls_dir = "/etc/symbiose/tls"
        expected_env["SYMBIOSE_SERVICES_CA"] = (f"{tls_dir}/{merged['tls']['servicesCaKey']}"
                                                if calls and tls else None)
        mutual = tls and merged["tls"]["clientCa"]
        expected_env["SYMBIOSE_SERVICES_CLIENT_CERT"] = (f"{tls_dir}/{merged['tls']['certKey']}"
                                                         if calls and mutual else None)
        expected_env["SYMBIOSE_SERVICES_CLIENT_KEY"] = (f"{tls_dir}/{merged['tls']['keyKey']}"
                                                        if calls and mutual else None)
        envs[service] = env
        # The passports serve the public web port, under the public base URL: the one
        # configured, else the Ingress's host, else their Service inside the cluster.
        ingress = merged["services"]["passports"]["ingress"]
        public_base_url = (merged["config"]["publicBaseUrl"]
                           or (f"{'https' if ingress.get('tlsSecret') else 'http'}://{ingress['host']}"
                               if ingress["enabled"] else f"http://{RELEASE}-passports:{web_port}"))
        expected_env["SYMBIOSE_WEB_ADDR"] = (f"{merged['config']['bindHost']}:{web_port}"
                                             if service == "passports" else "off")
        expected_env["SYMBIOSE_PUBLIC_BASE_URL"] = public_base_url if service == "passports" else None
        for variable, value in expected_env.items():
            failures.check(env.get(variable) == value, context,
                           f"{variable} is {env.get(variable)!r}, expected {value!r}")
        unknown = {variable for variable in env if variable.startswith("SYMBIOSE_")} - settings - CHART_ONLY_VARIABLES
        extra = {variable["name"] for variable in merged["services"][service].get("extraEnv", [])}
        failures.check(not (unknown - extra), context,
                       f"variables no service reads: {sorted(unknown - extra)}")
        # The services that keep a store are told which; with PostgreSQL, each reads its own
        # database's URL from the Secret, under its own name (services never share storage).
        store = merged["store"]["backend"]
        keeps_a_store = service in STATEFUL_SERVICES
        failures.check(env.get("SYMBIOSE_STORE") == (store if keeps_a_store else None), context,
                       f"SYMBIOSE_STORE is {env.get('SYMBIOSE_STORE')!r}, expected {store!r} on a stateful service only")
        postgres_url = [variable.get("valueFrom", {}).get("secretKeyRef") for variable in container.get("env", [])
                        if variable["name"] == "SYMBIOSE_POSTGRES_URL"]
        own_secret = merged["store"]["postgres"].get("secrets", {}).get(service)
        expected_ref = ({"name": own_secret["name"], "key": own_secret["key"]} if own_secret
                        else {"name": merged["store"]["postgres"]["existingSecret"], "key": service})
        failures.check(postgres_url == ([expected_ref] if keeps_a_store and store == "postgres" else []), context,
                       f"SYMBIOSE_POSTGRES_URL is {postgres_url!r}, expected the Secret's key {service!r} with postgres")
        failures.check(("SYMBIOSE_NATS_CREDENTIALS" in env) == bool(credentials_secret), context,
                       "SYMBIOSE_NATS_CREDENTIALS must be set exactly when nats.credentials.existingSecret is")
        for variable in ("SYMBIOSE_TLS_CERT", "SYMBIOSE_TLS_KEY"):
            failures.check((variable in env) == tls, context, f"{variable} must be set exactly when tls.enabled")
        failures.check(("SYMBIOSE_TLS_CLIENT_CA" in env) == (tls and merged["tls"]["clientCa"]), context,
                       "SYMBIOSE_TLS_CLIENT_CA must be set exactly when tls.enabled and tls.clientCa")
        esdb = [variable.get("valueFrom", {}).get("secretKeyRef") for variable in container.get("env", [])
                if variable["name"] == "SYMBIOSE_EVENTSTORE_CONNECTION_STRING"]
        expected_ref = {"name": merged["store"]["eventstoredb"]["existingSecret"], "key": service}
        failures.check(esdb == ([expected_ref] if keeps_a_store and store == "eventstoredb" else []), context,
                       f"SYMBIOSE_EVENTSTORE_CONNECTION_STRING is {esdb!r}, expected the Secret's key {service!r} "
                       "with eventstoredb")

        # Files from Secrets: every path a variable names is on a mounted Secret.
        mounts = {mount["name"]: mount for mount in container.get("volumeMounts", [])}
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        data_mount = mounts.get("data", {})
        failures.check(data_mount.get("mountPath") == data_dir, context, f"the data volume is not at {data_dir}")
        key_mount = mounts.get("signing-key", {})
        failures.check(key_mount.get("mountPath") == f"{data_dir}/keys/signing.key"
                       and key_mount.get("subPath") == "signing.key" and key_mount.get("readOnly") is True,
                       context, f"the signing key is not mounted read-only at {data_dir}/keys/signing.key")
        failures.check(volumes.get("signing-key", {}).get("secret", {}).get("secretName") == key_secret, context,
                       f"the signing key's volume is not the Secret {key_secret}")
        for variable, volume in (("SYMBIOSE_NATS_CREDENTIALS", "nats-credentials"),
                                 ("SYMBIOSE_TLS_CERT", "tls"), ("SYMBIOSE_TLS_KEY", "tls"),
                                 ("SYMBIOSE_TLS_CLIENT_CA", "tls"), ("SYMBIOSE_SERVICES_CA", "tls"),
                                 ("SYMBIOSE_SERVICES_CLIENT_CERT", "tls"), ("SYMBIOSE_SERVICES_CLIENT_KEY", "tls")):
            if variable in env:
                mount_path = mounts.get(volume, {}).get("mountPath", "<none>")
                failures.check(env[variable].startswith(mount_path + "/") and "secret" in volumes.get(volume, {}),
                               context, f"{variable}={env[variable]} is not on a mounted Secret ({mount_path})")

        # A disruption budget per service.
        budget = objects.get(("PodDisruptionBudget", name))
        if failures.check(budget is not None, context, f"no PodDisruptionBudget {name}"):
            failures.check(budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), context,
                           "the PodDisruptionBudget does not select the pods")
            if replicated:
                failures.check(budget["spec"].get("minAvailable") == 1 and "maxUnavailable" not in budget["spec"],
                               context, "a replicated service's PodDisruptionBudget keeps one replica up")
            else:
                failures.check(budget["spec"].get("maxUnavailable") == 1, context,
                               "the PodDisruptionBudget should allow one pod unavailable")
        if replicated:
            hpa = objects.get(("HorizontalPodAutoscaler", name))
            failures.check((hpa is not None) == service_autoscaling, context,
                           "an HPA must be rendered exactly when the service's autoscaling is on")
            if hpa is not None:
                failures.check(hpa["spec"]["scaleTargetRef"]["name"] == name, context,
                               "the HPA does not scale the service's Deployment")

    # The passports' Ingress: exactly when enabled, to the web port of their Service.
    ingress_values = merged["services"]["passports"]["ingress"]
    ingress = objects.get(("Ingress", f"{RELEASE}-passports"))
    wanted = merged["services"]["passports"]["enabled"] and ingress_values["enabled"]
    if failures.check((ingress is not None) == wanted, label,
                      "the passports' Ingress must be rendered exactly when services.passports.ingress.enabled"):
        if ingress is not None:
            rule = ingress["spec"]["rules"][0]
            backend = rule["http"]["paths"][0]["backend"]["service"]
            failures.check(rule["host"] == ingress_values["host"] and backend == {
                "name": f"{RELEASE}-passports", "port": {"name": "web"}}, label,
                f"the Ingress does not lead {ingress_values['host']} to the passports' web port: {rule}")
            tls_hosts = [host for entry in ingress["spec"].get("tls", []) for host in entry["hosts"]]
            failures.check(tls_hosts == ([ingress_values["host"]] if ingress_values.get("tlsSecret") else []), label,
                           f"the Ingress's TLS hosts are {tls_hosts}")
    hpa = objects.get(("HorizontalPodAutoscaler", f"{RELEASE}-catalog"))
    if autoscaling:
        if failures.check(hpa is not None, label, "catalog autoscaling is on but there is no HPA"):
            failures.check(hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                             "name": f"{RELEASE}-catalog"},
                           label, "the HPA does not scale the catalog's Deployment")
    else:
        failures.check(hpa is None, label, "catalog autoscaling is off but an HPA is rendered")
    hpas = {key[1] for key in objects if key[0] == "HorizontalPodAutoscaler"}
    autoscaled = {f"{RELEASE}-{service}" for service in SERVICES
                  if merged["services"][service].get("autoscaling", {}).get("enabled", False)
                  and merged["services"][service]["enabled"]
                  and (service == "catalog" or merged["store"]["backend"] == "postgres"
                       or (merged["store"]["backend"] == "eventstoredb" and service != "listings"))}
    failures.check(hpas == autoscaled, label, f"HPAs {sorted(hpas)}, expected {sorted(autoscaled)}")

    check_calls(failures, label, envs, grpc_port, {"SYMBIOSE_LISTINGS_URL": merged["config"]["listingsUrl"],
                                                   "SYMBIOSE_SETTLEMENT_URL": merged["config"]["settlementUrl"]})
    check_policies(failures, label, merged, objects)

    created_secret = objects.get(("Secret", f"{RELEASE}-signing-key"))
    failures.check((created_secret is not None) == bool(signing_key["create"]), label,
                   "the signing key's Secret must be rendered exactly when signingKey.create")
    if created_secret is not None:
        failures.check(created_secret["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
                       label, "the created signing key must be kept on uninstall")
    print(f"  rendered  {label}: {len(objects)} objects")
    return seen_variables


def check_calls(failures: Failures, label: str, envs: dict[str, dict[str, str]], grpc_port: int,
                configured: dict[str, str]) -> None:
    """Every call between services can succeed: the caller speaks the callee's TLS (https exactly
    when the callee serves TLS), trusts a CA from the callee's Secret, and presents a client
    certificate exactly when the callee asks for one."""
    for caller, callee, variable in (("matching", "listings", "SYMBIOSE_LISTINGS_URL"),
                                     ("logistics", "listings", "SYMBIOSE_LISTINGS_URL"),
                                     ("logistics", "settlement", "SYMBIOSE_SETTLEMENT_URL")):
        if caller not in envs or callee not in envs:
            continue
        context = f"{label}: {caller} to {callee}"
        (calling, serving) = (envs[caller], envs[callee])
        url = calling.get(variable, "")
        serves_tls = "SYMBIOSE_TLS_CERT" in serving
        failures.check(url.startswith("https://" if serves_tls else "http://"), context,
                       f"{variable}={url!r}, but {callee} serves {'TLS' if serves_tls else 'plaintext'}")
        failures.check(url == configured[variable] if configured[variable]
                       else url.endswith(f"//{RELEASE}-{callee}:{grpc_port}"), context,
                       f"{variable}={url!r} is neither the configured address nor {callee}'s Service")
        if serves_tls:
            failures.check("SYMBIOSE_SERVICES_CA" in calling and calling["SYMBIOSE_SERVICES_CA"].rsplit("/", 1)[0]
                           == serving["SYMBIOSE_TLS_CERT"].rsplit("/", 1)[0], context,
                           "the caller trusts no CA from the Secret the callee's certificate comes from")
        asks_certificate = "SYMBIOSE_TLS_CLIENT_CA" in serving
        failures.check(("SYMBIOSE_SERVICES_CLIENT_CERT" in calling) == asks_certificate, context,
                       "the caller must present a client certificate exactly when the callee requires one")


def check_policies(failures: Failures, label: str, merged: dict[str, Any], objects: dict) -> None:
    """The NetworkPolicies, the ServiceAccount and the ServiceMonitor, as the values ask."""
    policies = {key[1]: value for key, value in objects.items() if key[0] == "NetworkPolicy"}
    enabled = [service for service in SERVICES if merged["services"][service]["enabled"]]
    wanted = {f"{RELEASE}-{service}" for service in enabled} if merged["networkPolicy"]["enabled"] else set()
    failures.check(set(policies) == wanted, label, f"NetworkPolicies {sorted(policies)}, expected {sorted(wanted)}")
    nats_ports = {int(re.search(r":(\d+)$", server.strip()).group(1)) if re.search(r":(\d+)$", server.strip())
                  else 4222 for server in merged["nats"]["url"].split(",")}
    store = merged["store"]["backend"]
    for service in enabled:
        policy = policies.get(f"{RELEASE}-{service}")
        if policy is None:
            continue
        context = f"{label}: {service}'s NetworkPolicy"
        spec = policy["spec"]
        failures.check(spec["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == service
                       and set(spec["policyTypes"]) == {"Ingress", "Egress"}, context,
                       "it must select the service's pods, in and out")
        ingress = {port["port"]: rule for rule in spec["ingress"] for port in rule["ports"]}
        grpc_from = ingress.get("grpc", {}).get("from", [])
        failures.check(any("podSelector" in peer and peer["podSelector"]["matchLabels"].get(
            "app.kubernetes.io/instance") == RELEASE for peer in grpc_from)
                       and all(peer in grpc_from for peer in merged["networkPolicy"]["grpcFrom"]), context,
                       f"the gRPC port must take the release's pods and grpcFrom: {grpc_from}")
        failures.check(("web" in ingress) == (service == "passports"), context, "the web port is the passports' only")
        if service == "passports":
            failures.check(ingress["web"].get("from", []) == merged["networkPolicy"]["ingressFrom"], context,
                           "the web port must take the ingress controller (ingressFrom)")
        if merged["metrics"]["enabled"]:
            failures.check(ingress.get("metrics", {}).get("from", []) == merged["networkPolicy"]["metricsFrom"],
                           context, "the metrics port must take metricsFrom")
        failures.check("health" in ingress and "from" not in ingress["health"], context,
                       "the probes' health port must be open to the kubelet")
        egress = {(port["port"], port.get("protocol", "TCP")): rule for rule in spec["egress"]
                  for port in rule.get("ports", [])}
        failures.check((53, "UDP") in egress and (53, "TCP") in egress, context, "no DNS out")
        for port in nats_ports:
            failures.check(egress.get((port, "TCP"), {}).get("to", []) == merged["networkPolicy"]["natsTo"], context,
                           f"NATS on port {port} must be reachable at natsTo")
        store_port = {"postgres": 5432, "eventstoredb": 2113}.get(store)
        if store_port and service != "catalog":
            failures.check(egress.get((store_port, "TCP"), {}).get("to", []) == merged["networkPolicy"]["storeTo"],
                           context, f"the store's port {store_port} must be reachable at storeTo")
        if service in ("matching", "logistics"):
            failures.check((merged["ports"]["grpc"], "TCP") in egress, context,
                           "the other services' gRPC port must be reachable")
    account = objects.get(("ServiceAccount", merged["serviceAccount"]["name"] or RELEASE))
    failures.check((account is not None) == merged["serviceAccount"]["create"], label,
                   "the ServiceAccount must be rendered exactly when serviceAccount.create")
    if account is not None:
        failures.check(account.get("automountServiceAccountToken") is False, label,
                       "the ServiceAccount must not mount its token")
    monitor = objects.get(("ServiceMonitor", RELEASE))
    wants_monitor = merged["serviceMonitor"]["enabled"] and merged["metrics"]["enabled"]
    if failures.check((monitor is not None) == wants_monitor, label,
                      "the ServiceMonitor must be rendered exactly when serviceMonitor and metrics are enabled"):
        if monitor is not None:
            spec = monitor["spec"]
            failures.check([endpoint["port"] for endpoint in spec["endpoints"]] == ["metrics"]
                           and {"key": "symbiose.io/headless", "operator": "DoesNotExist"}
                           in spec["selector"].get("matchExpressions", [])
                           and merged["serviceMonitor"]["labels"].items() <= monitor["metadata"]["labels"].items(),
                           label, f"the ServiceMonitor must scrape each pod once, on its metrics port: {spec}")
            scraped = [key[1] for key, value in objects.items() if key[0] == "Service"
                       and "symbiose.io/headless" not in value["metadata"]["labels"]]
            failures.check(len(scraped) == len(enabled), label, f"the ServiceMonitor selects {scraped}")


def check_refused(failures: Failures, chart: helm.Chart, label: str, values: dict[str, Any], hint: str) -> None:
    """Rendering `values` must fail, with `hint` in the message."""
    try:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as error:
        message = " ".join(str(error).split())
        if failures.check(hint in message, f"refuse {label}", f"refused, but the message lacks {hint!r}: {message}"):
            # The schema's findings start with "- at"; a template's own failure follows its path.
            reason = message[message.index("- at"):] if "- at" in message else message.rsplit("): ", 1)[-1]
            print(f"  refused   {label}: {reason}")
        return
    failures.check(False, f"refuse {label}", "rendered, but these values are wrong")


def main() -> int:
    started = time.monotonic()
    failures = Failures()
    settings = config_variables()
    failures.check(len(settings) >= 16, "config.rs", f"found only {sorted(settings)}")
    production = yaml.safe_load(PRODUCTION_VALUES.read_text(encoding="utf-8"))
    print(f"helm-python-sdk over Helm {helm.helm_sdk_version()}, chart {CHART_DIR}")

    # Lint, as `helm lint`: findings of warning or error severity fail the check.
    for label, values, kube in (("defaults", REQUIRED_VALUES, None), ("production", production, None),
                                ("defaults", REQUIRED_VALUES, KUBE_VERSION_MIN)):
        report = helm.lint(CHART_DIR, values, kube_version=kube)
        context = f"lint {label}" + (f" on Kubernetes {kube}" if kube else "")
        serious = [f"{message['path']}: {message['error'].strip()}" for message in report["messages"]
                   if message["severity"] >= 2]
        failures.check(not serious and not report["errors"], context, "; ".join(serious or report["errors"]))
        print(f"  linted    {context}: {len(report['messages'])} findings, {len(serious)} warnings or errors")

    with helm.Chart.load(CHART_DIR) as chart:
        failures.check(chart.metadata.get("apiVersion") == "v2" and chart.name == "symbiose", "Chart.yaml",
                       "expected apiVersion v2 and the name symbiose")
        defaults = chart.values
        failures.check(all(defaults["services"][service]["enabled"] for service in SERVICES), "values.yaml",
                       "every service is enabled by default")
        failures.check(not defaults["services"]["catalog"]["autoscaling"]["enabled"], "values.yaml",
                       "catalog autoscaling is off by default")
        # The image image/build.sh makes: its name in the README, its user (image/stage.sh).
        failures.check(defaults["image"]["repository"] == "registry.example.com/symbiose/symbiose", "values.yaml",
                       "image.repository is the image the README builds and pushes")
        failures.check(all(defaults["podSecurityContext"][key] == 65532 for key in ("runAsUser", "runAsGroup", "fsGroup")),
                       "values.yaml", "the pods run as the image's user and group, 65532")

        renders = {
            "defaults": REQUIRED_VALUES,
            "production": production,
            "production without TLS": merge(production, {"tls": {"enabled": False}}),
            "production with TLS but not mutual, no ServiceAccount of its own": merge(production, {
                "tls": {"clientCa": False}, "serviceAccount": {"create": False, "name": "platform"}}),
            "production with TLS to an address of its own, no spread": merge(production, {
                "config": {"listingsUrl": "https://listings.symbiose.svc.cluster.local:50051"},
                "topologySpread": {"enabled": False}}),
            "created signing key, EventStoreDB": merge(REQUIRED_VALUES, {
                "signingKey": {"existingSecret": "", "create": True,
                               "value": "c3ltYmlvc2Utc3ltYmlvc2Utc3ltYmlvc2Utc3ltYmk="},
                "store": {"backend": "eventstoredb", "eventstoredb": {"existingSecret": "symbiose-eventstoredb"}},
                "metrics": {"enabled": False},
            }),
            "PostgreSQL store": merge(REQUIRED_VALUES, {
                "store": {"backend": "postgres", "postgres": {"existingSecret": "symbiose-postgres"}},
            }),
            "EventStoreDB store, matching at 3": merge(REQUIRED_VALUES, {
                "store": {"backend": "eventstoredb", "eventstoredb": {"existingSecret": "symbiose-eventstoredb"}},
                "services": {"matching": {"replicas": 3}},
            }),
            "production with NATS over TLS on port 4443": merge(production, {"nats": {
                "url": "tls://nats-0.nats.messaging.svc:4443,tls://nats-1.nats.messaging.svc:4443"}}),
            "PostgreSQL store, matching autoscaled, settlement at 3": merge(REQUIRED_VALUES, {
                "store": {"backend": "postgres", "postgres": {"existingSecret": "symbiose-postgres"}},
                "services": {"matching": {"autoscaling": {"enabled": True}}, "settlement": {"replicas": 3}},
            }),
            "listings and catalog only": merge(REQUIRED_VALUES, {"services": {
                name: {"enabled": False} for name in ("matching", "logistics", "settlement", "passports")}}),
            "the passports' Ingress over plain HTTP, a base URL of its own": merge(REQUIRED_VALUES, {
                "config": {"publicBaseUrl": "https://pass.example.eu"},
                "services": {"passports": {"ingress": {"enabled": True, "host": "passports.example.eu"}}}}),
        }
        seen: set[str] = set()
        for label, values in renders.items():
            seen |= check_render(failures, label, values, chart, settings)
        # One values key per setting: across the renders, every setting is set somewhere.
        failures.check(settings <= seen, "settings", f"never rendered: {sorted(settings - seen)}")

        wrong = {
            "no nats.url": ({"signingKey": REQUIRED_VALUES["signingKey"]}, "url"),
            "an empty nats.url": (merge(REQUIRED_VALUES, {"nats": {"url": ""}}), "/nats/url"),
            "no signing key": ({"nats": REQUIRED_VALUES["nats"]}, "signingKey"),
            "catalog replicas 0": (merge(REQUIRED_VALUES, {"services": {"catalog": {"replicas": 0}}}), "replicas"),
            "listings replicas 2 on the embedded store": (merge(REQUIRED_VALUES, {"services": {"listings": {
                "replicas": 2}}}), "need store.backend postgres or eventstoredb"),
            "listings replicas 2 on EventStoreDB": (merge(REQUIRED_VALUES, {
                "store": {"backend": "eventstoredb", "eventstoredb": {"existingSecret": "symbiose-eventstoredb"}},
                "services": {"listings": {"replicas": 2}}}), "vault's keys"),
            "matching replicas 0 on PostgreSQL": (merge(REQUIRED_VALUES, {
                "store": {"backend": "postgres", "postgres": {"existingSecret": "symbiose-postgres"}},
                "services": {"matching": {"replicas": 0}}}), "replicas"),
            "PostgreSQL with a Secret for some services only": (merge(REQUIRED_VALUES, {
                "store": {"backend": "postgres", "postgres": {"secrets": {
                    "listings": {"name": "pg-listings-app", "key": "uri"}}}}}), "existingSecret"),
            "a bad pullPolicy": (merge(REQUIRED_VALUES, {"image": {"pullPolicy": "Sometimes"}}), "pullPolicy"),
            "a bad log format": (merge(REQUIRED_VALUES, {"config": {"logFormat": "xml"}}), "logFormat"),
            "an https listings URL without TLS": (merge(REQUIRED_VALUES, {"config": {
                "listingsUrl": "https://listings:443"}}), "needs tls.enabled"),
            "a plaintext listings URL with TLS": (merge(REQUIRED_VALUES, {
                "tls": {"enabled": True, "existingSecret": "symbiose-tls"},
                "config": {"listingsUrl": "http://symbiose-listings:50051"}}), "use https://"),
            "a listings URL in another scheme": (merge(REQUIRED_VALUES, {"config": {
                "listingsUrl": "grpc://listings:50051"}}), "listingsUrl"),
            "a volume shared between nodes": (merge(REQUIRED_VALUES, {"services": {"listings": {"persistence": {
                "accessModes": ["ReadWriteMany"]}}}}), "accessModes"),
            "a startup margin of an hour and more": (merge(REQUIRED_VALUES, {"probes": {"startup": {
                "marginSeconds": 4000}}}), "marginSeconds"),
            "a shutdown delay over a minute": (merge(REQUIRED_VALUES, {"config": {"shutdownDelayMs": 90000}}),
                                               "shutdownDelayMs"),
            "a listings URL on port 70000": (merge(REQUIRED_VALUES, {"config": {
                "listingsUrl": "http://listings:70000"}}), "listingsUrl"),
            "an https settlement URL without TLS": (merge(REQUIRED_VALUES, {"config": {
                "settlementUrl": "https://settlement:443"}}), "needs tls.enabled"),
            "grpc port 0": (merge(REQUIRED_VALUES, {"ports": {"grpc": 0}}), "/ports/grpc"),
            "metrics port 70000": (merge(REQUIRED_VALUES, {"ports": {"metrics": 70000}}), "/ports/metrics"),
            "web port 0": (merge(REQUIRED_VALUES, {"ports": {"web": 0}}), "/ports/web"),
            "the passports' Ingress without its host": (merge(REQUIRED_VALUES, {"services": {"passports": {
                "ingress": {"enabled": True}}}}), "host"),
            "a host name with a scheme": (merge(REQUIRED_VALUES, {"services": {"passports": {
                "ingress": {"enabled": True, "host": "https://passports.example.eu"}}}}), "host"),
            "a timeout as text": (merge(REQUIRED_VALUES, {"config": {"requestTimeoutMs": "10s"}}), "requestTimeoutMs"),
            "a token TTL over 3650 days": (merge(REQUIRED_VALUES, {"config": {"tokenTtlDays": 4000}}), "tokenTtlDays"),
            "an unknown top-level key": (merge(REQUIRED_VALUES, {"replicaCount": 3}), "replicaCount"),
            "a created key without its value": (merge(REQUIRED_VALUES, {
                "signingKey": {"existingSecret": "", "create": True}}), "/signingKey/value"),
            "a key of 16 bytes": (merge(REQUIRED_VALUES, {
                "signingKey": {"existingSecret": "", "create": True, "value": "MDEyMzQ1Njc4OWFiY2RlZg=="}}),
                "/signingKey/value"),
            "TLS without its Secret": (merge(REQUIRED_VALUES, {"tls": {"enabled": True}}), "/tls/existingSecret"),
            "PostgreSQL without its Secret": (merge(REQUIRED_VALUES, {"store": {"backend": "postgres"}}),
                                             "existingSecret"),
            "EventStoreDB without its Secret": (merge(REQUIRED_VALUES, {"store": {"backend": "eventstoredb"}}),
                                                "existingSecret"),
            "an unknown store": (merge(REQUIRED_VALUES, {"store": {"backend": "mysql"}}), "backend"),
            "six stream replicas": (merge(REQUIRED_VALUES, {"nats": {"streamReplicas": 6}}), "streamReplicas"),
            "autoscaling min above max": (merge(REQUIRED_VALUES, {"services": {"catalog": {"autoscaling": {
                "enabled": True, "minReplicas": 5, "maxReplicas": 2}}}}), "minReplicas"),
            "a target CPU of 0%": (merge(REQUIRED_VALUES, {"services": {"catalog": {"autoscaling": {
                "targetCPUUtilizationPercentage": 0}}}}), "targetCPUUtilizationPercentage"),
            "resources without limits": (merge(REQUIRED_VALUES, {"services": {"matching": {"resources": {
                "limits": None}}}}), "limits"),
        }
        for label, (values, hint) in wrong.items():
            check_refused(failures, chart, label, values, hint)

    elapsed_s = time.monotonic() - started
    if failures.messages:
        print(f"\nchart check FAILED: {len(failures.messages)} of {failures.checks} checks", file=sys.stderr)
        for message in failures.messages:
            print(f"  - {message}", file=sys.stderr)
        return 1
    print(f"chart check passed: {failures.checks} checks in {elapsed_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
