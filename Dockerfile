# syntax=docker/dockerfile:1
# The production image: `docker build -t ian-gateway .` at the repository root.
# Runs exactly the documented command, `ian-gateway serve`, with IAN_WORKERS=2.

# 1. The browser snippet. js/build.mjs writes js/dist/ian.js and copies it to
#    ../gateway/static/ian.js, so the same layout is kept here.
FROM node:20-slim AS snippet
WORKDIR /src
COPY js/package.json js/package-lock.json js/
RUN cd js && npm ci --no-audit --no-fund
COPY js/ js/
RUN mkdir -p gateway/static && cd js && npm run build

# 2. Wheels: the gateway's own, built with the fresh snippet inside, and every
#    dependency's (uvloop, httptools, orjson, aiohttp ship binary wheels).
FROM python:3.11-slim AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY --from=snippet /src/gateway/static/ian.js gateway/static/ian.js
RUN pip wheel --wheel-dir /wheels .

# 3. The image: installed from the wheels only, nothing to compile, no build tools.
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels ian-gateway
# The default spool, sqlite:///./ian-spool.db, lives in the working directory:
# mount a volume on /var/lib/ian-gateway to keep unsent events across restarts.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ian-gateway \
        --create-home --shell /usr/sbin/nologin ian
WORKDIR /var/lib/ian-gateway
USER ian
ENV IAN_WORKERS=2
EXPOSE 8080
# slim has no curl; urlopen raises on a non-2xx answer or no answer, and the check fails.
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4)"]
CMD ["ian-gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
