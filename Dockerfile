# syntax=docker/dockerfile:1
# One image for every role: `docker run jukebox serve api`, `... serve processor relay`, ...
# Build: docker build -t jukebox .   (compose.yaml builds it as jukebox:latest)

# ---- build -------------------------------------------------------------------------------
# The toolchain the project is developed and tested with.
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# Dependency layer: the manifests with stub sources, so that crates.io dependencies are
# compiled once and cached until a Cargo.toml or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY domain/Cargo.toml domain/
COPY nats/Cargo.toml nats/
COPY handlers/Cargo.toml handlers/
COPY projections/Cargo.toml projections/
COPY edge/Cargo.toml edge/
COPY storage/Cargo.toml storage/
# Bench targets are named in Cargo.toml, so cargo wants their files; they are small.
COPY benches benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir -p src domain/src nats/src handlers/src projections/src edge/src storage/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs domain/src/lib.rs nats/src/lib.rs handlers/src/lib.rs \
       projections/src/lib.rs edge/src/lib.rs storage/src/lib.rs \
    && cargo build --release --locked --bin jukebox \
    && rm -rf src domain/src nats/src handlers/src projections/src edge/src storage/src

# The real sources. Touch the crate roots: COPY keeps the files' own (older) mtimes, and
# cargo would otherwise take the stub builds above for up to date.
COPY domain domain
COPY nats nats
COPY handlers handlers
COPY projections projections
COPY edge edge
COPY storage storage
COPY migrations migrations
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    touch src/main.rs src/lib.rs domain/src/lib.rs nats/src/lib.rs handlers/src/lib.rs \
       projections/src/lib.rs edge/src/lib.rs storage/src/lib.rs \
    && cargo build --release --locked --bin jukebox \
    && install -m 0755 target/release/jukebox /usr/local/bin/jukebox

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim

# ffmpeg/ffprobe for transcoding and probing; yt-dlp from PyPI in its own venv (Debian's
# is too old for YouTube; leave YT_DLP_VERSION empty for the newest, which YouTube needs);
# curl for the health checks; ca-certificates for S3, SMTP and Google over TLS.
ARG YT_DLP_VERSION=
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl ffmpeg python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/yt-dlp \
    && /opt/yt-dlp/bin/pip install --no-cache-dir --disable-pip-version-check \
       "yt-dlp${YT_DLP_VERSION:+==${YT_DLP_VERSION}}" \
    && ln -s /opt/yt-dlp/bin/yt-dlp /usr/local/bin/yt-dlp \
    && yt-dlp --version

# An unprivileged user. work/ exists in the image so that a named volume mounted there
# starts out owned by it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/jukebox --create-home \
       --shell /usr/sbin/nologin jukebox \
    && install -d -o jukebox -g jukebox /var/lib/jukebox/work /var/lib/jukebox/objects
COPY --from=builder /usr/local/bin/jukebox /usr/local/bin/jukebox

USER jukebox
WORKDIR /var/lib/jukebox
ENV BIND_ADDRESS=0.0.0.0 \
    HEALTH_PORT=9090 \
    OBJECT_STORE_DIR=/var/lib/jukebox/objects \
    IMPORT_WORK_DIR=/var/lib/jukebox/work \
    DEV_DATA_DIR=/var/lib/jukebox/dev-data \
    LOG_FORMAT=json
# 3000 web, 8000 API, 8005 stream; 9090 health and metrics (never published).
EXPOSE 3000 8000 8005 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${HEALTH_PORT}/healthz" || exit 1
ENTRYPOINT ["jukebox"]
CMD ["serve", "all"]
