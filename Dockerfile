# kubetrail's container image: one static-enough binary on distroless, run as non-root.
#
#   docker build -t kubetrail:dev .
#
# Reproducible builds: the toolchain and base images are pinned by these arguments, the
# dependencies by Cargo.lock (--locked), paths are remapped out of the binary, and
# SOURCE_DATE_EPOCH (e.g. `git log -1 --format=%ct`) fixes every timestamp the build writes:
#
#   docker build --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) -t kubetrail:dev .
#
# The final stage holds the binary and the C++ runtime the embedded store (DuckDB) needs, which
# gcr.io/distroless/cc provides; `.ci/run` checks that the binary needs no other library.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG SOURCE_DATE_EPOCH=0
WORKDIR /src
COPY . .
ENV CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never \
    RUSTFLAGS="--remap-path-prefix=/src=. --remap-path-prefix=/usr/local/cargo=cargo"
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kubetrail \
    && install -D -m 0755 target/release/kubetrail /out/kubetrail \
    && strip /out/kubetrail

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/kubetrail /usr/local/bin/kubetrail
# distroless's nonroot user; the agent's DaemonSet runs it as root to read the apiserver's
# 0600 audit log, the server never needs to.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kubetrail"]
CMD ["serve", "--listen=0.0.0.0:8080", "--data-dir=/var/lib/kubetrail"]
