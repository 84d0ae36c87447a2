# cidwatch worker image (docker-compose.yml builds it as cidwatch:local).
# One image for every cidwatch command: the compose file runs `cidwatch worker`, `cidwatch api`,
# `cidwatch topics create` and `cidwatch simulate` from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs (see .dockerignore): source edits elsewhere do not bust the pip layer.
# docs/runbooks: cidwatch/runbooks links to it, and the runbooks ship in the package (the API serves them).
COPY pyproject.toml README.md LICENSE ./
COPY docs/runbooks ./docs/runbooks
COPY cidwatch ./cidwatch
COPY streams ./streams
COPY rules ./rules
COPY dashboards ./dashboards
RUN pip install . && rm -rf build

# Not root. /data is Faust's data directory; the worker's state itself lives in Kafka (its changelog),
# so nothing here has to outlive the container (docker-compose.yml keeps no volume for it).
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin cidwatch \
    && mkdir -p /data && chown cidwatch /data
USER cidwatch
WORKDIR /data
ENV CIDWATCH_WORKDIR=/data

# The worker's web server: /metrics, /healthz, /readyz (streams/web.py), nothing else.
EXPOSE 6066
# Healthy once the worker judges: /readyz answers 200 when it joined its group and read its state back
# (urlopen raises on a 503 or a refused connection). The image has no curl; Python is there.
# docker-compose.yml disables it for the one-shot commands and points it at the API's port for `api`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('CIDWATCH_WEB_PORT', '6066'), timeout=4)"
CMD ["cidwatch", "worker", "--web-host", "0.0.0.0"]
