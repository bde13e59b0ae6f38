# syntax=docker/dockerfile:1
#
# Container image of ecr-facade (gRPC on :50051, plaintext; TLS/mTLS is the
# mesh's job). See deploy/README.md for building, pushing and deploying.
#
#   docker build -t ecr-facade:dev .
#   docker run --rm -p 50051:50051 -e AWS_REGION=eu-west-1 \
#     -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN ecr-facade:dev
#
# Lint: scripts/validate-deploy (hadolint).

# Keep in step with the toolchain the project is developed and tested with
# (`rustc --version`). For reproducible builds pin the digest too:
#   --build-arg RUST_VERSION=1.95 and FROM rust:...@sha256:<digest>.
ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
# Builder: Debian 12 (bookworm), the same glibc as the distroless runtime
# below, so the dynamically linked binary runs there unchanged.
# No system protoc is needed: build.rs compiles proto/ with the pure-Rust
# protox. aws-lc-sys (TLS crypto) builds with the image's C compiler.
# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build
# jemalloc (the binary's allocator, src/main.rs) fixes its page size when it
# is built. arm64 kernels use 4, 16 or 64 KiB pages: build for 64 KiB (2^16),
# which runs on all three (a smaller build aborts on larger pages).
ARG TARGETARCH

# 1) Dependency layer. Only the manifests, the build script and the protos
#    are copied, and a dummy main.rs/lib.rs is built: every crate in
#    Cargo.lock (and the generated proto code) is compiled into this layer,
#    which stays cached until Cargo.toml, Cargo.lock, build.rs or proto/
#    change. Editing src/ does not rebuild the dependencies.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
# (Cargo.toml names the benchmark's source: a stub satisfies the manifest.)
RUN mkdir -p src benches/facade \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/facade/main.rs \
    && touch src/lib.rs \
    && if [ "$TARGETARCH" = arm64 ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
    && cargo build --release --locked --bin ecr-facade \
    && rm -rf src

# 2) The real sources. `touch` gives main.rs/lib.rs a modification time newer
#    than the dummy build: COPY keeps the files' own (possibly older) times,
#    and cargo would otherwise consider the crate fresh and ship the dummy.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && if [ "$TARGETARCH" = arm64 ]; then export JEMALLOC_SYS_WITH_LG_PAGE=16; fi \
    && cargo build --release --locked --bin ecr-facade \
    && install -D -m 0755 target/release/ecr-facade /out/ecr-facade

# ---------------------------------------------------------------------------
# Runtime: distroless "cc" = glibc, libgcc_s, CA certificates (used for TLS
# to ECR/STS), tzdata; no shell, no package manager. The :nonroot tag's user
# is "nonroot" = uid/gid 65532, HOME=/home/nonroot.
# ---------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /out/ecr-facade /usr/local/bin/ecr-facade

# Listen on all interfaces inside the container (the binary's own default is
# loopback only) and log JSON lines for the cluster's log pipeline.
# Every other flag keeps its documented default; override any of them with
# ECR_FACADE_<FLAG> (see `ecr-facade serve --help`). For IPv6-only pods use
# ECR_FACADE_LISTEN=[::]:50051.
ENV ECR_FACADE_LISTEN=0.0.0.0:50051 \
    ECR_FACADE_LOG_FORMAT=json

# The distroless "nonroot" user, written numerically: Kubernetes'
# runAsNonRoot can only verify a numeric uid (a named one makes the kubelet
# refuse to start the pod), and hadolint DL3066 asks for the same. The
# Deployment also sets runAsUser/runAsGroup 65532 explicitly.
USER 65532:65532
EXPOSE 50051

# Exec form: the binary is PID 1 and receives SIGTERM directly; it then
# reports NOT_SERVING on gRPC health, stops accepting connections, drains
# in-flight calls for up to ECR_FACADE_DRAIN_TIMEOUT (30s) and exits 0.
ENTRYPOINT ["/usr/local/bin/ecr-facade"]
CMD ["serve"]
