# syntax=docker/dockerfile:1
# payfleet: one image, every subcommand (worker, gateway, sandbox, publish, demo).
# The production binary `payfleet` hands `sandbox` and `demo|bench|chaos` to the
# simulator and tools binaries installed beside it.
#   docker build -t payfleet .
#   docker run --rm -e PAYFLEET__AMQP__URL=... -e PAYFLEET__REDIS__URL=... \
#     -e PAYFLEET__ECOMMPAY__SECRET_KEY=... -e PAYFLEET__EPAY__ENABLED=false payfleet worker
# (with epay: PAYFLEET__EPAY__CLIENT_SECRET and PAYFLEET__EPAY__FINGERPRINT_KEY instead of
# ENABLED=false; README.md "Run a fleet by hand" lists every process's environment)

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit cache mounts);
# the binary is copied out of the cached target dir, which is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --workspace --bins \
    && install -D -m 0755 -t /out target/release/payfleet target/release/payfleet-sim \
       target/release/payfleet-tools

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 payfleet \
    && useradd --system --uid 10001 --gid payfleet --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin payfleet
COPY --from=builder /out/ /usr/local/bin/
# For reference and `--config`; the defaults are compiled into the binary.
COPY config/ /etc/payfleet/
USER 10001:10001
# gateway callbacks, sandbox, worker ops, gateway ops, reconciler ops (/metrics, /healthz, /readyz);
# each must listen on 0.0.0.0 in a container: PAYFLEET__GATEWAY__LISTEN, PAYFLEET__SANDBOX__LISTEN,
# PAYFLEET__WORKER__OPS_LISTEN, PAYFLEET__GATEWAY__OPS_LISTEN, PAYFLEET__RECONCILER__OPS_LISTEN.
EXPOSE 8080 8090 9100 9101 9102
ENTRYPOINT ["payfleet"]
CMD ["--help"]
