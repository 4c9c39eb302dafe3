# Two stages: build a virtual environment with the dependencies (cached apart from the
# source), then copy it into a slim runtime image that runs as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir bot cogs storage \
    && touch bot/__init__.py cogs/__init__.py storage/__init__.py \
    && /venv/bin/pip install . \
    && /venv/bin/pip uninstall -y kontext-bot
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
RUN /venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 kontext \
    && mkdir /data && chown kontext:kontext /data
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KONTEXT_DATABASE_URL=sqlite:////data/kontext.db
USER kontext
WORKDIR /home/kontext
VOLUME ["/data"]
CMD ["kontext-bot", "run"]
