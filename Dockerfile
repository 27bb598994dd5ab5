# One image for every role: `docker run jukebox serve api`, `... serve processor relay`, ...
# Build: docker build -t jukebox .

# ---- build -------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependency layer: the manifests with stub sources, so that crates.io dependencies are
# compiled once and cached until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY domain/Cargo.toml domain/
COPY nats/Cargo.toml nats/
COPY handlers/Cargo.toml handlers/
COPY projections/Cargo.toml projections/
COPY edge/Cargo.toml edge/
# Bench targets are named in Cargo.toml, so cargo wants their files; they are small.
COPY benches benches
RUN mkdir -p src domain/src nats/src handlers/src projections/src edge/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs domain/src/lib.rs nats/src/lib.rs handlers/src/lib.rs \
       projections/src/lib.rs edge/src/lib.rs \
    && cargo build --release --locked --bin jukebox \
    && rm -rf src domain/src nats/src handlers/src projections/src edge/src

# The real sources. Touch the crate roots: COPY keeps the files' own (older) mtimes, and
# cargo would otherwise take the stub builds above for up to date.
COPY domain domain
COPY nats nats
COPY handlers handlers
COPY projections projections
COPY edge edge
COPY migrations migrations
COPY src src
RUN touch src/main.rs src/lib.rs domain/src/lib.rs nats/src/lib.rs handlers/src/lib.rs \
       projections/src/lib.rs edge/src/lib.rs \
    && cargo build --release --locked --bin jukebox \
    && install -m 0755 target/release/jukebox /usr/local/bin/jukebox

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim

# ffmpeg for transcoding; yt-dlp from PyPI through pipx (Debian's is too old for YouTube);
# curl for container health checks.
ARG YT_DLP_VERSION=
ENV PIPX_HOME=/opt/pipx \
    PIPX_BIN_DIR=/usr/local/bin
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl ffmpeg python3 python3-venv pipx \
    && rm -rf /var/lib/apt/lists/* \
    && pipx install "yt-dlp${YT_DLP_VERSION:+==${YT_DLP_VERSION}}" \
    && yt-dlp --version

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/jukebox --create-home \
    --shell /usr/sbin/nologin jukebox
COPY --from=builder /usr/local/bin/jukebox /usr/local/bin/jukebox

USER jukebox
WORKDIR /var/lib/jukebox
ENV BIND_ADDRESS=0.0.0.0 \
    OBJECT_STORE_DIR=/var/lib/jukebox/objects \
    DEV_DATA_DIR=/var/lib/jukebox/dev-data \
    LOG_FORMAT=json \
    HEALTH_PORT=9090
# 9090: /healthz, /readyz and /metrics for Prometheus and probes; never published.
EXPOSE 3000 8000 8005 9090
ENTRYPOINT ["jukebox"]
CMD ["serve", "all"]
