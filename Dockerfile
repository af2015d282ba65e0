# vpp-maglev in a container: maglevd (default), or maglevd-frontend / maglevc / maglevt /
# maglev-vppemu as the command. Multi-stage: the build stage makes the same private
# environment the Debian package ships (/usr/lib/vpp-maglev); the final image has Debian's
# python3 and that directory, nothing else of the build.
#
#   docker build -t vpp-maglev .
#   docker run --rm -v /etc/vpp-maglev:/etc/vpp-maglev:ro -v /run/vpp:/run/vpp \
#       -p 9090:9090 -p 9091:9091 -p 8080:8080 vpp-maglev
#
# maglevd runs as the user maglevd (uid 999), never as root. The entrypoint starts as root
# only to hand CAP_NET_RAW and CAP_SYS_ADMIN to maglevd as ambient capabilities, and only
# those the container was given:
#   --cap-add NET_RAW      raw ICMP sockets (Docker's default set has it; without it, ICMP
#                          checks use unprivileged ping sockets where ping_group_range allows)
#   --cap-add SYS_ADMIN -v /var/run/netns:/var/run/netns:ro
#                          health checks inside a network namespace (healthchecker.netns)
# See docs/user-guide.md, "Containers". docker-compose.yaml runs a demo with the emulator.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libssl-dev git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN python3 -m venv /usr/lib/vpp-maglev \
 && /usr/lib/vpp-maglev/bin/pip install --no-cache-dir --upgrade pip \
 && /usr/lib/vpp-maglev/bin/pip install --no-cache-dir . \
 && rm -rf /usr/lib/vpp-maglev/bin/pip* /usr/lib/vpp-maglev/lib/python3*/site-packages/pip*

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libssl3 util-linux iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 999 maglevd \
 && useradd --system --uid 999 --gid maglevd --home-dir /var/lib/vpp-maglev --create-home maglevd \
 && install -d -o maglevd -g maglevd /run/vpp
COPY --from=build /usr/lib/vpp-maglev /usr/lib/vpp-maglev
COPY debian/maglev.yaml /etc/vpp-maglev/maglev.yaml
COPY docker/entrypoint.sh /usr/local/bin/maglev-entrypoint
ENV PATH=/usr/lib/vpp-maglev/bin:$PATH \
    MAGLEV_GRPC_ADDR=:9090 \
    MAGLEV_METRICS_ADDR=:9091 \
    MAGLEV_WEB_ADDR=:8080
EXPOSE 9090 9091 8080
VOLUME ["/etc/vpp-maglev"]
ENTRYPOINT ["/usr/local/bin/maglev-entrypoint"]
CMD ["maglevd"]
