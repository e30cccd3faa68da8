"""Offline checks of the Helm chart (run by scripts/helm-test, which provides the tools).

For each values set (the chart's defaults, then every helm/tidelog/ci/*-values.yaml): `helm lint
--strict`, `helm template`, `kubernetes-validate --strict` of every rendered manifest against a
Kubernetes version, the ServiceMonitor (a CRD without a bundled schema) against the Service it
selects, and each broker pod's config: the ConfigMap's broker.yaml run through the
StatefulSet's own command with `serve` replaced by `check-config`, with the pod's environment
(`$(POD_NAME)` expanded), so the chart and the binary cannot drift apart.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RELEASE = "tidelog"
NAMESPACE = "streaming"
CRD_KINDS = {"ServiceMonitor"}


class CheckError(Exception):
    pass


def run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    if done.returncode != 0:
        raise CheckError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def render(args, values):
    flags = ["-f", str(values)] if values else []
    run([args.helm, "lint", "--strict", args.chart, *flags])
    out = run([args.helm, "template", RELEASE, args.chart, "--namespace", NAMESPACE,
               "--kube-version", args.kube_version, *flags])
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    if len(found) != 1:
        raise CheckError(f"expected one {kind} {name or ''}, rendered {len(found)}")
    return found[0]


def validate(args, docs, workdir):
    files = []
    for idx, doc in enumerate(docs):
        if doc["kind"] in CRD_KINDS:
            continue
        path = workdir / f"{idx:02d}-{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(str(path))
    out = run([args.kubernetes_validate, "--strict", "-k", args.kube_version, *files])
    passed = len(re.findall(r"^INFO .* passed for resource", out, re.M))
    if passed != len(files) or "WARN" in out:
        raise CheckError(f"kubernetes-validate: {passed} of {len(files)} manifests passed:\n{out}")
    return passed


def check_service_monitor(docs):
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [d for d in docs if d["kind"] == "Service"
                    and selector.items() <= d["metadata"]["labels"].items()]
        ports = {p["name"] for s in services for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if endpoint["port"] not in ports:
                raise CheckError(f"ServiceMonitor port {endpoint['port']} is none of the selected Services' ports {sorted(ports)}")
    return len(monitors)


def pod_env(container, pod_name):
    """The container's env as Kubernetes sets it: fieldRef metadata.name, $(VAR) expanded."""
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
        elif var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = pod_name
        else:
            raise CheckError(f"env {var['name']}: unsupported source {var}")
    return env


def check_brokers(args, docs, workdir):
    statefulset = one(docs, "StatefulSet")
    name = statefulset["metadata"]["name"]
    config = one(docs, "ConfigMap", name)["data"]["broker.yaml"]
    pod = statefulset["spec"]["template"]["spec"]
    if pod.get("enableServiceLinks") is not False:
        raise CheckError("the pod template must set enableServiceLinks: false")
    container = one([dict(c, kind="Container", metadata={"name": c["name"]}) for c in pod["containers"]], "Container", "tidelog")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_path = "/etc/tidelog/broker.yaml"
    if mounts.get(config_path, {}).get("subPath") != "broker.yaml":
        raise CheckError(f"broker.yaml is not mounted at {config_path}")
    local_config = workdir / "broker.yaml"
    local_config.write_text(config)
    command = container["command"]
    if command[:2] != ["bash", "-c"] or "tidelog serve" not in command[2]:
        raise CheckError(f"unexpected command {command}")
    script = command[2].replace("tidelog serve", "tidelog check-config").replace(config_path, str(local_config))
    bin_dir = str(Path(args.tidelog).resolve().parent)
    replicas = statefulset["spec"]["replicas"]
    for ordinal in range(replicas):
        pod_name = f"{name}-{ordinal}"
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", **pod_env(container, pod_name)}
        resolved = yaml.safe_load(run(["bash", "-c", script], env=env))
        if resolved["node_id"] != ordinal:
            raise CheckError(f"{pod_name}: node_id {resolved['node_id']}, want {ordinal}")
        if len(resolved["cluster"]["seeds"]) != replicas:
            raise CheckError(f"{pod_name}: {len(resolved['cluster']['seeds'])} seeds for {replicas} brokers")
        admin_port = int(resolved["admin"]["listen"].rsplit(":", 1)[1])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        if ports["admin"] != admin_port:
            raise CheckError(f"admin.listen port {admin_port} is not the container's admin port {ports['admin']}")
    return f"{replicas} brokers pass"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", required=True)
    parser.add_argument("--kubernetes-validate", required=True)
    parser.add_argument("--tidelog", required=True, help="the tidelog binary for check-config")
    parser.add_argument("--chart", default="helm/tidelog")
    parser.add_argument("--kube-version", default="1.35.0")
    args = parser.parse_args()
    variants = [None, *sorted(Path(args.chart, "ci").glob("*-values.yaml"))]
    failed = 0
    for values in variants:
        label = values.name if values else "default values"
        try:
            with tempfile.TemporaryDirectory(prefix="tidelog-helm-") as tmp:
                docs = render(args, values)
                validated = validate(args, docs, Path(tmp))
                monitors = check_service_monitor(docs)
                brokers = check_brokers(args, docs, Path(tmp))
            print(f"ok   {label}: lint --strict, {validated} manifests valid for Kubernetes {args.kube_version}"
                  f" (--strict), {monitors} ServiceMonitor(s), check-config: {brokers}")
        except (CheckError, subprocess.TimeoutExpired, KeyError, yaml.YAMLError) as error:
            failed += 1
            print(f"FAIL {label}: {error}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
