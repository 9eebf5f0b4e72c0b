#!/usr/bin/env python3
"""Writes a manifest of N container services: an API tier (routed, canary, GPUs on some,
secrets, env, healthchecks, readiness), workers that depend on it, and stores with
volumes. Usage: gen.py DIR N"""
import os
import sys

out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
lines = ["name: bench-export", "services:"]
volumes = []
for i in range(n):
    kind = i % 5
    name = f"svc{i:03d}"
    lines.append(f"  {name}:")
    if kind == 0:
        lines += [
            f"    image: registry.example.com/store:{i}",
            f"    port: {5000 + i}",
            "    healthcheck: { tcp: true, interval: 2s, start_period: 20s }",
            f"    volumes: [\"data{i}:/var/lib/data\"]",
            "    resources: { cpus: 2, memory: 2Gi }",
        ]
        volumes.append(f"data{i}")
    elif kind in (1, 2):
        lines += [
            f"    image: registry.example.com/api:{i}",
            "    command: [serve, --port, \"${PORT}\"]",
            f"    port: {8000 + i}",
            f"    route: {{ path: /api/{name}, strip_prefix: true }}",
            "    replicas: 3",
            "    env: { LOG_LEVEL: info, MODEL_URL: http://model:8000/v1 }",
            "    secrets: [API_TOKEN]",
            "    healthcheck: { http: /health, interval: 1s, timeout: 2s, retries: 3, start_period: 30s }",
            "    readiness: { http: /ready }",
            "    resources: { cpus: 1, memory: 512Mi" + (", gpus: 1" if kind == 2 else "") + " }",
            "    deploy: { strategy: canary, steps: [10, 50, 100], step_interval: 30s }",
        ]
        store = f"svc{i - kind:03d}"
        lines.append(f"    depends_on: {{ {store}: healthy }}")
    else:
        api = f"svc{i - kind + 1:03d}"
        lines += [
            f"    image: registry.example.com/worker:{i}",
            "    command: [work, --queue, default]",
            "    replicas: 2",
            f"    depends_on: {{ {api}: healthy }}",
            "    healthcheck: { exec: [worker, ping], interval: 5s }",
            "    env: { CONCURRENCY: \"8\", DATABASE_URL: \"postgres://app:pw@db:5432/app\" }",
        ]
if volumes:
    lines.append("volumes:")
    lines += [f"  {v}: {{}}" for v in volumes]
with open(os.path.join(out, "orchestra.yaml"), "w") as f:
    f.write("\n".join(lines) + "\n")
