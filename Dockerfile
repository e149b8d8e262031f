# syncd, the daemon with its web app. Build: docker build -t syncd .   Run one node on SQLite:
#   docker run -p 8787:8787 -v syncd-data:/var/lib/syncd syncd
# A cluster (Postgres, Redis, several nodes, a load balancer): docker-compose.yml and
# docs/deployment.md.

# -- the web app ---------------------------------------------------------------------------------
# vite builds pwa/ into pwa/dist; the app imports the JS SDK from ../client-sdk/js by path.
FROM node:20-bookworm-slim AS pwa
WORKDIR /src/pwa
# The lock file first, so that a change to the app's sources does not reinstall its packages.
COPY pwa/package.json pwa/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY client-sdk/js/ /src/client-sdk/js/
COPY pwa/ ./
RUN npm run build

# -- the daemon ----------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY crdt/ crdt/
COPY storage/ storage/
COPY syncd/ syncd/
COPY client-sdk/python/ client-sdk/python/
# Installed in place, with the exact versions the suite passed with: syncd serves the web app
# from pwa/dist beside its own package (syncd/app.py), so the package stays in /app.
RUN pip install -c requirements.lock -e . \
    && python -c "import syncd.cli, storage, crdt, redis"
COPY --from=pwa /src/pwa/dist pwa/dist

# Not root. The data dir holds SQLite and the generated secret when the image runs alone; a
# cluster node keeps nothing there that matters (its database is Postgres, its secret is given).
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/syncd --create-home syncd
ENV SYNCD_DATA_DIR=/var/lib/syncd
VOLUME ["/var/lib/syncd"]
USER syncd

EXPOSE 8787
# /healthz answers 503 when the database is unusable, and urlopen raises on it (exit 1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SYNCD_PORT', '8787') + '/healthz', timeout=4)"]
# SIGTERM: syncd stops accepting, commits what is queued and closes its sockets with 1001.
STOPSIGNAL SIGTERM
CMD ["syncd", "serve", "--host", "0.0.0.0"]
