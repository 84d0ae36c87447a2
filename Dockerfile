# cidwatch worker image (docker-compose.yml builds it as cidwatch:local).
# One image for every cidwatch command: the compose file runs `cidwatch worker`, `cidwatch topics
# create` and `cidwatch simulate` from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs (see .dockerignore): source edits elsewhere do not bust the pip layer.
COPY pyproject.toml README.md ./
COPY cidwatch ./cidwatch
COPY streams ./streams
COPY rules ./rules
COPY dashboards ./dashboards
RUN pip install . && rm -rf build

# Not root; /data holds the worker's RocksDB tables (a named volume copies this ownership).
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin cidwatch \
    && mkdir -p /data && chown cidwatch /data
USER cidwatch
WORKDIR /data
ENV CIDWATCH_WORKDIR=/data

# /metrics and the worker's web server.
EXPOSE 6066
CMD ["cidwatch", "worker", "--web-host", "0.0.0.0"]
