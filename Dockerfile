# Two stages: build a virtual environment with the locked dependencies (cached apart from the
# source), then copy it into a slim runtime image that runs as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
# Dependencies first, exactly as locked (with hashes): this layer is rebuilt only when the
# lock file changes, and every build installs the same versions.
COPY requirements.lock ./
RUN /venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
RUN /venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 kontext \
    && mkdir /data && chown kontext:kontext /data
COPY --from=build /venv /venv
# /healthz and /metrics on port 8080 inside the container (publish it to scrape metrics).
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KONTEXT_DATABASE_URL=sqlite:////data/kontext.db \
    KONTEXT_HTTP_HOST=0.0.0.0 \
    KONTEXT_HTTP_PORT=8080
EXPOSE 8080
USER kontext
WORKDIR /home/kontext
VOLUME ["/data"]
# Healthy while storage, the job engine and the gateway work and some provider is usable.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["kontext-bot", "health"]
CMD ["kontext-bot", "run"]
