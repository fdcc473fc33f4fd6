# Release image of the aggios binary (used by compose/).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin aggios

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/aggios aggios && mkdir -p /var/lib/aggios && chown aggios /var/lib/aggios
COPY --from=build /src/target/release/aggios /usr/local/bin/aggios
RUN printf '#!/bin/sh\nexec curl -fsS http://127.0.0.1:8080/readyz >/dev/null\n' > /usr/local/bin/aggios-healthcheck \
    && chmod +x /usr/local/bin/aggios-healthcheck
USER aggios
WORKDIR /var/lib/aggios
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/aggios"]
CMD ["serve"]
