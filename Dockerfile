# The MCP server as a container image: `docker run -i --rm IMAGE` is an MCP client's server command
# (stdio). Build it with scripts/build-server-image.sh (`make image`), which first puts the project's
# wheel and the locked wheels of requirements-server.lock in dist/image-wheels/: the build itself
# then needs no Python package index, and only Debian's mirror for Python and the OpenSSH client.
#
# Mounts (see the README): the config at /config/config.toml ($BLUEGREEN_CONFIG), known_hosts at
# /home/bluegreen/.ssh/known_hosts, and the ssh-agent socket at /ssh-agent ($SSH_AUTH_SOCK).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin bluegreen \
 && install -d -o bluegreen -g bluegreen -m 700 /home/bluegreen/.ssh \
 && install -d -m 755 /config
# The locked dependencies first: this layer is reused until the lock changes.
COPY requirements-server.lock /tmp/requirements-server.lock
COPY dist/image-wheels/deps/ /tmp/wheels/
RUN python3 -m venv /opt/bluegreen \
 && /opt/bluegreen/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels \
      --require-hashes -r /tmp/requirements-server.lock \
 && rm -rf /tmp/wheels /tmp/requirements-server.lock
COPY dist/image-wheels/project/ /tmp/project/
RUN /opt/bluegreen/bin/pip install --no-cache-dir --no-index --no-deps /tmp/project/*.whl \
 && rm -rf /tmp/project
ENV PATH=/opt/bluegreen/bin:$PATH \
    BLUEGREEN_CONFIG=/config/config.toml \
    SSH_AUTH_SOCK=/ssh-agent \
    PYTHONUNBUFFERED=1
# The MCP registry checks this label against server.json's name.
LABEL io.modelcontextprotocol.server.name="io.github.bluegreen-mcp/bluegreen-mcp"
USER bluegreen
WORKDIR /home/bluegreen
CMD ["bluegreen-mcp"]
