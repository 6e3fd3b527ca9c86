# Two images, one per kind of pod (deploy/k8s chooses the module each
# container runs):
#   docker build --target control-plane -t ghcr.io/brightrun/brightrun-control-plane:0.1.0 .
#   docker build --target trainer       -t ghcr.io/brightrun/brightrun-trainer:0.1.0 .
# control-plane: the gateway (with the dashboard) and the four gRPC services;
# no torch, CUDA or DeepSpeed (pyproject.toml's base dependencies).
# trainer: the trainer agent and its training workers (the `trainer` extra);
# on x86_64 PyPI's torch==2.13.0 is the CUDA build the agents need.
# Both run as the numeric user 10001 with a read-only root filesystem: what
# they write goes to /tmp and /var/lib/brightrun ($HOME, BRIGHTRUN_HOME), which
# the pods mount as emptyDir volumes.

# The web dashboard, built offline into static files the gateway serves at /.
FROM node:20-slim AS web
WORKDIR /web
COPY gateway/web/package.json gateway/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY gateway/web/ ./
RUN npm run build

# The sources both images install; gen/ is generated in each, as by `make
# venv`: the first install brings grpcio-tools, the second packages the
# generated contracts with the code.
FROM python:3.11-slim AS source
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOME=/var/lib/brightrun
RUN groupadd --gid 10001 brightrun \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/brightrun brightrun \
    && mkdir -p /var/lib/brightrun && chown 10001:10001 /var/lib/brightrun
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos protos
COPY services services
COPY gateway gateway

FROM source AS control-plane
ENV BRIGHTRUN_WEB_DIST=/app/web-dist
RUN pip install . && python protos/generate.py && pip install --no-deps --force-reinstall . && rm -rf gen build
COPY --from=web /web/dist /app/web-dist
USER 10001:10001

# DS_BUILD_OPS=0: DeepSpeed installs as pure Python, its ops compile on first use.
FROM source AS trainer
ENV DS_BUILD_OPS=0
RUN pip install '.[trainer]' && python protos/generate.py && pip install --no-deps --force-reinstall . && rm -rf gen build
USER 10001:10001
