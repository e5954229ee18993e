# syntax=docker/dockerfile:1
# netflow2traces in a FROM scratch image: the Bun single binary, its glibc libraries, CA roots and a
# numeric non-root user. Nothing else (no shell): the HEALTHCHECK runs the binary's own `healthcheck`.
#
#   docker build -t netflow2traces .
#   docker run -d -p 2055:2055/udp -e OTEL_EXPORTER_OTLP_ENDPOINT=http://tempo:4317 netflow2traces
#
# Multi-arch (linux/amd64, linux/arm64) with buildx: the builder stage runs on the target platform (under
# QEMU when emulated), so `ldd` lists that platform's own libraries.

FROM node:22-bookworm-slim AS builder
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*
# The same runtimes the project pins, from the npm registry.
RUN npm install -g deno@2.9.6 bun@1.4.5 && deno --version && bun --version
WORKDIR /src
COPY package.json deno.json deno.lock ./
RUN deno install --frozen
COPY main.ts ./
COPY src/ src/
COPY scripts/build.ts scripts/
COPY deploy/rootfs.sh deploy/
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=linux-x64 ;; \
      arm64) target=linux-arm64 ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
  && NETFLOW2TRACES_DIST=/dist deno run -A scripts/build.ts bun "$target" \
  && sh deploy/rootfs.sh "/dist/netflow2traces-bun-$target" /out \
  && /out/rootfs/netflow2traces --version

# Everything below is what test/image.test.ts reproduces and runs in a chroot: keep the two in step.
FROM scratch
COPY --from=builder /out/rootfs/ /
COPY --from=builder --chown=65532:65532 /out/state/ /var/lib/netflow2traces/
ENV NETFLOW_LISTEN_HOST=0.0.0.0 \
    NETFLOW_LISTEN_PORT=2055 \
    NETFLOW_HTTP_LISTEN=0.0.0.0:9464 \
    NETFLOW_TEMPLATE_CACHE_FILE=/var/lib/netflow2traces/templates.json
USER 65532:65532
EXPOSE 2055/udp 9464/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/netflow2traces", "healthcheck"]
ENTRYPOINT ["/netflow2traces"]
