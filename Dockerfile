# syntax=docker/dockerfile:1

# Gatehouse container image: a static binary on distroless, running as a
# non-root user. Build with `docker build -t gatehouse .` or through
# compose.yaml (`docker compose up --build`).
#
# The image has no shell and no curl, so it declares no HEALTHCHECK: point
# your orchestrator at GET /healthz (liveness: the process answers) and
# GET /readyz (readiness: the database answers, 503 otherwise) on port 8080
# (or 9464). Prometheus scrapes GET /metrics on the operations port 9464,
# which answers nothing else of the public surface; publish it only to the
# monitoring network.

# --- build -------------------------------------------------------------------
# go.mod asks for Go 1.26.8 or newer; the Go command in this image fetches
# that toolchain through the module proxy should the image ever be older.
ARG GO_IMAGE=golang:1.26-bookworm
FROM ${GO_IMAGE} AS build

WORKDIR /src

# Modules first, so that editing the source does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# CGO_ENABLED=0: a static binary (the embedded SQLite is pure Go,
# modernc.org/sqlite), so the runtime image needs no C library.
# The first build compiles the embedded FerretDB and takes a minute or two.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/gatehouse . \
 && mkdir -p /out/data

# --- runtime -----------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/gatehouse /gatehouse
# data_dir: the embedded database and generated development secrets. Unused
# when mongodb.uri is set and session.secret is configured, but it must exist
# and be writable. A named volume mounted here inherits this ownership.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]

# The distroless "nonroot" user, given by number so that Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532
# No config.yaml here: the built-in defaults apply, overridden by GATEHOUSE_*
# variables. To use a file, mount it and pass `-config /path/to/config.yaml`.
WORKDIR /home/nonroot

# Listen on every interface of the container (the default, 127.0.0.1, would
# be unreachable from outside it). Like the binary, the image starts in
# dev_mode unless GATEHOUSE_DEV_MODE=false; production settings are listed in
# README.md ("Running in production").
ENV GATEHOUSE_SERVER_ADDRESS=0.0.0.0:8080 \
    GATEHOUSE_SERVER_OPS_ADDRESS=0.0.0.0:9464 \
    GATEHOUSE_DATA_DIR=/data
EXPOSE 8080 9464

ENTRYPOINT ["/gatehouse"]
