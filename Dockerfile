# Release image of the aggios binary (used by compose/):
#
#   docker build -t aggios:latest .
#
# The build stage turns debug info off and strips symbols through Cargo's
# environment, so the workspace's release profile (line tables, for local
# profiling and benchmarks) is unchanged. The runtime is distroless: glibc,
# CA certificates and tzdata, no shell, no package manager, user nonroot
# (65532).

FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
COPY . .
# The registry and target directory are BuildKit caches (kept between
# builds, not in the image), so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin aggios \
    && install -D -m 0755 target/release/aggios /out/aggios \
    && install -d -m 0750 /out/data/keys

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/aggios /usr/local/bin/aggios
# The data directory, owned by the runtime user; a volume mounted on keys/
# starts with this ownership (compose's `keys` volume: the signing keyring).
COPY --from=build --chown=65532:65532 /out/data /var/lib/aggios
USER 65532:65532
WORKDIR /var/lib/aggios
ENV AGGIOS_DATA_DIR=/var/lib/aggios
# 8080: the API (behind Traefik); 9464: metrics.listen when set.
EXPOSE 8080 9464
# Liveness only: an orchestrator that restarts unhealthy containers must not
# restart every replica during a database or Redis outage (compose checks
# readiness instead, to order start-ups and rolling restarts). No shell here:
# the binary makes the request itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/aggios", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/aggios"]
CMD ["serve"]
