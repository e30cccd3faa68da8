# Tidelog container image (README "Container").
#
# With a registry (BuildKit, Docker's default builder, builds only the stages a target needs):
#   docker build -t tidelog .          compiles in RUST_IMAGE, runs on RUNTIME_IMAGE
#   docker build --build-arg RUST_IMAGE=rust:1.95-bookworm \
#                --build-arg RUNTIME_IMAGE=debian:bookworm-slim -t tidelog .
# Without a registry, scripts/docker-build makes a local bookworm base image, then builds
# `--target prebuilt` with RUNTIME_IMAGE set to it and a binary built on the host put in the
# build context at dist/tidelog (build argument TIDELOG_BINARY).
#
# The offline stages come first: the legacy builder (no BuildKit) runs every stage up to
# --target in file order, so `--target prebuilt` must not reach the registry's Rust image.

ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm

# --- runtime-base: user, data volume, healthcheck and entrypoint; no binary yet ---------------
FROM ${RUNTIME_IMAGE} AS runtime-base
RUN groupadd --system --gid 10001 tidelog \
 && useradd --system --uid 10001 --gid tidelog --home-dir /var/lib/tidelog --no-create-home \
      --shell /usr/sbin/nologin tidelog \
 && install -d -o tidelog -g tidelog -m 0750 /var/lib/tidelog
COPY docker/healthcheck /usr/local/bin/tidelog-healthcheck
COPY docker/broker.yaml /etc/tidelog/broker.yaml
USER 10001:10001
VOLUME ["/var/lib/tidelog"]
WORKDIR /var/lib/tidelog
EXPOSE 9092 9644
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 CMD ["tidelog-healthcheck"]
ENTRYPOINT ["tidelog"]
CMD ["serve", "--config", "/etc/tidelog/broker.yaml"]

# --- prebuilt: a binary built on the host (glibc 2.36 or older: Debian bookworm) -------------
FROM runtime-base AS prebuilt
ARG TIDELOG_BINARY=dist/tidelog
COPY --chown=0:0 ${TIDELOG_BINARY} /usr/local/bin/tidelog

# --- build: compile in a Rust image (needs a registry) ---------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY vendor vendor
COPY src src
# Cargo.toml names test targets under tests/; the release build compiles only src.
COPY tests tests
RUN cargo build --release --locked --bin tidelog

# --- runtime: the default target --------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=build /src/target/release/tidelog /usr/local/bin/tidelog
