# One image for every BrightRun component; the Kubernetes manifests
# (deploy/k8s) choose the module each container runs. On x86_64 PyPI's
# torch==2.13.0 is the CUDA build the trainer agents need.

# The web dashboard, built offline into static files the gateway serves at /.
FROM node:20-slim AS web
WORKDIR /web
COPY gateway/web/package.json gateway/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY gateway/web/ ./
RUN npm run build

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DS_BUILD_OPS=0 BRIGHTRUN_WEB_DIST=/app/web-dist
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos protos
COPY services services
COPY gateway gateway
# gen/ is generated here, as by `make venv`: the first install brings
# grpcio-tools, the second packages the generated contracts with the code.
RUN pip install . && python protos/generate.py && pip install --no-deps --force-reinstall . && rm -rf gen build
COPY --from=web /web/dist /app/web-dist
RUN useradd --uid 10001 --create-home brightrun && mkdir -p /var/lib/brightrun && chown brightrun /var/lib/brightrun
USER brightrun
