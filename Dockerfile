# syntax=docker/dockerfile:1
# The resec image: FROM scratch with the compiled agent, the glibc libraries it links, /etc/passwd
# naming a non-root user and /etc/hosts. No shell, no package manager, no CA bundle (Deno carries its
# own roots). scripts/build-image.sh builds the same file system, and with umoci the same image, without
# a Docker engine.
#
#   docker build -t resec .
#   docker buildx build --platform linux/amd64,linux/arm64 -t resec .
#
# `deno compile` downloads its runtime base (denort) from dl.deno.land. Offline, hand it an unzipped
# denort for the target platform as a named build context:
#
#   docker build --build-context denort=/dir/holding/denort -t resec .
#
# The container needs /proc (every runtime mounts it): the binary reads /proc/self/exe.

# Debian bookworm (glibc 2.36) with Node's npm, which scripts/deno.sh installs the pinned Deno from.
ARG BUILD_IMAGE=node:22-bookworm-slim

# Replaced by `--build-context denort=DIR`. By default an image without a /denort file, and compile.sh
# downloads denort.
FROM ${BUILD_IMAGE} AS denort

# Builds on the target platform itself, so `ldd` sees the libraries of that platform.
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Only what the program is built from: a host's node_modules/ or .tools/ must not leak in.
COPY deno.json deno.lock main.ts ./
COPY lib/ lib/
COPY scripts/ scripts/
RUN --mount=type=bind,from=denort,target=/opt/denort \
    if [ -x /opt/denort/denort ]; then export DENORT_BIN=/opt/denort/denort; fi \
    && ./scripts/compile.sh --output /src/dist/resec \
    && ./scripts/build-image.sh --from binary --binary /src/dist/resec --rootfs-only /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 10001:10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/resec"]
