# scopesvc container image: the gRPC policy service with its embedded default catalog.
#
#   docker build -t scopesvc .
#   docker run --rm -p 50051:50051 -p 9464:9464 --read-only scopesvc
#   docker run --rm -v "$PWD/catalog.yaml:/etc/scopesvc/catalog.yaml:ro" scopesvc serve --catalog /etc/scopesvc/catalog.yaml
#
# Two stages: `build` turns the project and its dependencies into wheels and installs them into
# a virtual environment; the runtime stage copies only that environment onto a fresh slim base.
# The image writes nothing at run time (byte code is compiled at build time, no pip cache), so it
# runs with a read-only root filesystem as an unprivileged numeric user. tests/test_deploy_image.py
# runs this file's build commands and entry point on the host to keep them honest.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VENV=/opt/scopesvc \
    WHEELS=/wheels
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scopesvc/ scopesvc/
# xds-protos ships an older copy of opentelemetry/proto/ over opentelemetry-proto's files: reinstall the
# latter last so the OTLP exporters import.
RUN pip wheel --no-cache-dir --wheel-dir "$WHEELS" . \
 && python -m venv "$VENV" \
 && "$VENV/bin/pip" install --no-cache-dir --no-index --find-links "$WHEELS" scopesvc \
 && "$VENV/bin/pip" install --no-cache-dir --no-index --find-links "$WHEELS" --force-reinstall --no-deps \
      opentelemetry-proto \
 && "$VENV/bin/scopesvc" catalog validate

FROM python:3.11-slim
# Listen on all interfaces inside the container; flags (or the chart's args) override these.
ENV PATH=/opt/scopesvc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCOPESVC_HOST=0.0.0.0 \
    SCOPESVC_METRICS_HOST=0.0.0.0 \
    SCOPESVC_FORWARD_AUTH_HOST=0.0.0.0
COPY --from=build /opt/scopesvc /opt/scopesvc
USER 10001:10001
# gRPC (ScopeService, Envoy ext_authz, health, reflection) and Prometheus metrics.
EXPOSE 50051 9464
# Exec form: scopesvc is PID 1 and receives SIGTERM itself; it reports NOT_SERVING, drains and
# exits. Kubernetes probes the gRPC health service directly, so the image has no HEALTHCHECK.
ENTRYPOINT ["scopesvc"]
CMD ["serve"]
