# warden in the layout of the official nats-server image: the binary as the
# entrypoint, the config at /etc/nats/nats-server.conf, ports 4222 (clients),
# 6222 (routes) and 8222 (monitoring). Build with `docker build -t warden .`
# (or podman/buildah), run with
#   docker run -p 4222:4222 -v $PWD/my.conf:/etc/nats/nats-server.conf warden
# The config must listen on 0.0.0.0 to be reached from outside the container
# (warden's own default is 127.0.0.1).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin warden

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --uid 10001 warden \
 && mkdir -p /etc/nats \
 && printf 'listen: 0.0.0.0:4222\nhttp: 0.0.0.0:8222\n' > /etc/nats/nats-server.conf
COPY --from=build /src/target/release/warden /usr/local/bin/warden
USER warden
EXPOSE 4222 6222 8222
ENTRYPOINT ["warden"]
CMD ["--config", "/etc/nats/nats-server.conf"]
