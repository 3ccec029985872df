# syntax=docker/dockerfile:1
#
# Operator image: `modelfleet run` with the AWS, GCP and Azure node-pool providers.
#
#   docker build -t ghcr.io/modelfleet/modelfleet:0.1.0 .
#
# Stage 1 builds the project wheel and installs it, with its extras, into a virtualenv.
# Stage 2 copies only that virtualenv onto a fresh slim image: no pip cache, no source
# tree, no build tools. Both stages use the same base so the venv's interpreter path
# (/usr/local/bin/python3.11) exists in the final image.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The operator needs only the package and its metadata (see .dockerignore).
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/modelfleet \
 && wheel="$(ls /wheels/modelfleet-*.whl)" \
 && /opt/modelfleet/bin/pip install "${wheel}[operator,aws,gcp,azure]" \
 && /opt/modelfleet/bin/pip uninstall --yes pip \
 && /opt/modelfleet/bin/modelfleet --help > /dev/null

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="modelfleet" \
      org.opencontainers.image.description="Kubernetes operator serving models on GPUs across clouds and regions" \
      org.opencontainers.image.source="https://github.com/modelfleet/modelfleet" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# Same uid/gid as the Helm chart's securityContext (runAsUser/runAsGroup 65532).
RUN groupadd --system --gid 65532 modelfleet \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin modelfleet
COPY --from=build /opt/modelfleet /opt/modelfleet
# The chart mounts the root filesystem read-only with an emptyDir at /tmp: nothing may
# write bytecode or a HOME elsewhere.
ENV PATH=/opt/modelfleet/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
# 8081: liveness (/healthz), 9100: Prometheus metrics (/metrics).
EXPOSE 8081 9100
ENTRYPOINT ["modelfleet"]
CMD ["run"]
