#!/usr/bin/env python3
"""Generate benchmark inputs for `orchestra audit`.

    gen.py dockerfiles DIR N   -> DIR/NNNN/Dockerfile, N realistic Dockerfiles
    gen.py repo DIR N          -> a repository of about N files (services, compose,
                                  workflows, manifests, lockfiles, sources, docs, terraform)

Deterministic (fixed seed) so runs are comparable.
"""

import os
import random
import sys

rng = random.Random(42)

PY = ["3.9", "3.10", "3.11", "3.12", "3.13"]
NODE = ["18", "20", "22"]
GO = ["1.22", "1.23"]


def python_dockerfile(i):
    py = rng.choice(PY)
    variant = rng.choice(["slim", "slim-bookworm", "bookworm", "alpine"])
    apk = variant == "alpine"
    lines = [
        "# syntax=docker/dockerfile:1.7",
        f"ARG PYTHON_VERSION={py}",
        f"FROM python:${{PYTHON_VERSION}}-{variant} AS build",
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \\",
        "    PYTHONDONTWRITEBYTECODE=1",
        "WORKDIR /src",
    ]
    if apk:
        lines += ["RUN apk add --no-cache build-base libffi-dev"]
    else:
        lines += [
            "RUN apt-get update \\",
            "    # compilers for wheels without binaries",
            "    && apt-get install -y --no-install-recommends build-essential libpq-dev \\",
            "    && rm -rf /var/lib/apt/lists/*" if rng.random() < 0.7 else "    && echo done",
        ]
    lines += [
        "COPY pyproject.toml poetry.lock ./",
        "RUN --mount=type=cache,target=/root/.cache/pip pip install poetry==1.8.3 \\",
        "    && poetry export -f requirements.txt -o requirements.txt",
        "RUN pip wheel --wheel-dir /wheels -r requirements.txt",
        "",
        f"FROM python:{py}-{variant}",
        "RUN <<EOF",
        "set -eux",
        "useradd --system --uid 10001 app" if not apk else "adduser -D -u 10001 app",
        "mkdir -p /app && chown app /app",
        "EOF",
        "COPY --from=build /wheels /wheels",
        "RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels",
        "COPY --chown=10001:10001 src/ /app/src/",
        f"ENV PORT={8000 + i % 50} APP_MODULE=app.main:app",
        "EXPOSE ${PORT}",
    ]
    if rng.random() < 0.6:
        lines += [
            "HEALTHCHECK --interval=10s --timeout=3s \\",
            "  CMD python -c \"import urllib.request,os; urllib.request.urlopen('http://localhost:%s/healthz' % os.environ['PORT'])\"",
        ]
    if rng.random() < 0.8:
        lines += ["USER 10001"]
    if rng.random() < 0.3:
        lines += ['CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "${PORT}"]']
    else:
        lines += ["CMD exec gunicorn -k uvicorn.workers.UvicornWorker -b 0.0.0.0:$PORT $APP_MODULE"]
    return "\n".join(lines) + "\n"


def node_dockerfile(i):
    node = rng.choice(NODE)
    return f"""FROM node:{node}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:{node}-alpine AS build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN npm run build

FROM node:{node}-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
USER node
EXPOSE 3000
HEALTHCHECK CMD wget -qO- http://localhost:3000/health || exit 1
CMD ["node", "dist/server.js"]
"""


def go_dockerfile(i):
    go = rng.choice(GO)
    return f"""# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang:{go} AS build
ARG TARGETOS TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \\
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/svc ./cmd/svc

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/svc /svc
EXPOSE 8080
ENTRYPOINT ["/svc"]
"""


def nginx_dockerfile(i):
    return f"""FROM nginx:1.27-alpine
COPY nginx.conf /etc/nginx/conf.d/default.conf
ADD static/ /usr/share/nginx/html/
RUN apk add curl
"""


def dockerfile(i):
    r = rng.random()
    if r < 0.5:
        return python_dockerfile(i)
    if r < 0.75:
        return node_dockerfile(i)
    if r < 0.9:
        return go_dockerfile(i)
    return nginx_dockerfile(i)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def gen_dockerfiles(root, n):
    for i in range(n):
        write(os.path.join(root, f"{i:04d}", "Dockerfile"), dockerfile(i))


PY_SOURCE = '''"""Service module {n}."""

import os

from fastapi import APIRouter

router = APIRouter()
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://localhost/app")


@router.get("/items/{{item_id}}")
async def read_item(item_id: int) -> dict:
    return {{"id": item_id, "module": {n}}}
'''

TS_SOURCE = """export interface Item{n} {{
  id: number;
  name: string;
}}

export async function load{n}(id: number): Promise<Item{n}> {{
  const res = await fetch(`/api/items/${{id}}`);
  return (await res.json()) as Item{n};
}}
"""


def gen_repo(root, n):
    count = 0

    def put(path, text):
        nonlocal count
        write(os.path.join(root, path), text)
        count += 1

    put(".gitignore", "node_modules/\n__pycache__/\n.env\n")
    services = max(10, n // 40)
    compose = ["services:"]
    for s in range(services):
        name = f"svc{s:02d}"
        kind = "python" if s % 3 else "node"
        base = f"services/{name}"
        put(f"{base}/Dockerfile", python_dockerfile(s) if kind == "python" else node_dockerfile(s))
        put(f"{base}/.dockerignore", ".env*\n.git\nnode_modules\n")
        put(f"{base}/README.md", f"# {name}\n\nService {name}.\n")
        put(f"{base}/.env.example", "DATABASE_URL=\nOPENAI_API_KEY=<your-key>\n")
        if kind == "python":
            py = rng.choice(PY)
            put(f"{base}/pyproject.toml", f'[tool.poetry]\nname = "{name}"\nversion = "0.1.0"\n\n[tool.poetry.dependencies]\npython = "^{py}"\nfastapi = "^0.115"\nuvicorn = "^0.30"\n')
            put(f"{base}/requirements.txt", "fastapi==0.115.0\nuvicorn==0.30.6\nhttpx==0.27.2\n")
            put(f"{base}/.python-version", f"{py}\n")
        else:
            put(f"{base}/package.json", f'{{\n  "name": "{name}",\n  "version": "1.0.0",\n  "engines": {{"node": ">={rng.choice(NODE)}"}},\n  "dependencies": {{"express": "^4.19.2"}}\n}}\n')
            put(f"{base}/.nvmrc", f"{rng.choice(NODE)}\n")
        compose += [
            f"  {name}:",
            f"    build: ./{base}",
            f"    ports: [\"{9000 + s}:8000\"]",
            "    environment:",
            f"      SERVICE_NAME: {name}",
            "    deploy:",
            "      resources:",
            "        limits: {memory: 512m}",
        ]
    put("docker-compose.yml", "\n".join(compose) + "\n")
    put("compose.dev.yaml", "services:\n  db:\n    image: postgres:16\n    ports: [\"5432:5432\"]\n")
    for w in range(8):
        put(
            f".github/workflows/wf{w}.yml",
            f"""name: wf{w}
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install -r requirements.txt && pytest
""",
        )
    for t in range(10):
        put(f"infra/module{t}/main.tf", f'resource "google_storage_bucket" "b{t}" {{\n  name     = "bucket-{t}"\n  location = "EU"\n}}\n')
    i = 0
    while count < n:
        s = i % services
        base = f"services/svc{s:02d}/src"
        if s % 3:
            put(f"{base}/app/mod{i}.py", PY_SOURCE.format(n=i))
        else:
            put(f"{base}/lib/mod{i}.ts", TS_SOURCE.format(n=i))
        i += 1
    return count


if __name__ == "__main__":
    mode, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "dockerfiles":
        gen_dockerfiles(root, n)
    elif mode == "repo":
        gen_repo(root, n)
    else:
        sys.exit(f"unknown mode {mode}")
