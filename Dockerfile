# syntax=docker/dockerfile:1
# tienda: multi-stage build. The builder compiles the dependencies in a layer of their own
# (rebuilt only when Cargo.toml or Cargo.lock change), then the application; the runtime image
# holds the binary, curl for the health check, and a non-root user.
#   docker build -t tienda .
#   docker run -p 8080:8080 -e PORT=8080 -e DATABASE_URL=postgres://... -e TIENDA_JWT_SECRET=... tienda
# Images cannot be pulled on the machines this project is built on: deploy/check.sh lints this
# file (hadolint) and runs its `cargo build` step outside Docker instead.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS builder
# release for images; deploy/check.sh runs the same steps with the dev profile.
ARG PROFILE=release
WORKDIR /app
# Spelled out so every step names the same place (deploy/docker_steps.py points it at the
# CI's own target directory when it runs these steps outside Docker).
ENV CARGO_TARGET_DIR=/app/target

# Dependencies only: a stub crate with the real manifest and lock file.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --locked --profile "$PROFILE" --bin tienda \
    && rm -rf src

# The application: only this layer is rebuilt when the code (or a migration, which is compiled
# in) changes.
COPY migrations ./migrations
COPY src ./src
COPY templates ./templates
RUN touch src/main.rs src/lib.rs \
    && cargo build --locked --profile "$PROFILE" --bin tienda \
    && mkdir -p out \
    && cp "$CARGO_TARGET_DIR/$(if [ "$PROFILE" = dev ]; then echo debug; else echo "$PROFILE"; fi)/tienda" out/tienda \
    && out/tienda --version

FROM debian:${DEBIAN}-slim AS runtime
# curl answers the HEALTHCHECK; ca-certificates for TLS to managed databases and OTLP endpoints.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tienda \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tienda --create-home tienda
COPY --from=builder /app/out/tienda /usr/local/bin/tienda
# By number: the host and orchestrators can tell it is not root without the image's passwd.
USER 10001:10001
WORKDIR /var/lib/tienda
ENV TIENDA_ENV=production \
    TIENDA_LOG_FORMAT=json \
    PORT=8080 \
    TIENDA_SHUTDOWN_DRAIN_SECS=5 \
    TIENDA_SHUTDOWN_GRACE_SECS=20
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["sh", "-c", "curl -fsS \"http://127.0.0.1:${PORT}/health/live\" || exit 1"]
ENTRYPOINT ["/usr/local/bin/tienda"]
CMD ["serve"]
