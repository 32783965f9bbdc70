# One image for every tier: the command picks it (`bookcast feed|md|gateway`), compose.yaml
# sets the settings (docs/operations.md). No health check here: only the gateway serves
# HTTP, so compose.yaml gives the gateways theirs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    # Inside a container loopback-only is never useful; the gateway must be reachable.
    BOOKCAST_GATEWAY_HOST=0.0.0.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mdcore ./mdcore
COPY mdruntime ./mdruntime
COPY feed_simulator ./feed_simulator
COPY md_service ./md_service
COPY gateway ./gateway
COPY clients ./clients
COPY bookcast ./bookcast

RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /home/bookcast --create-home --shell /usr/sbin/nologin bookcast

# Numeric, so the runtime can check it is not root without reading /etc/passwd.
USER 10001
WORKDIR /home/bookcast

EXPOSE 8765
ENTRYPOINT ["bookcast"]
CMD ["--help"]
