# syntax=docker/dockerfile:1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/app/data/achievements.db

RUN useradd --create-home --uid 10001 bot
WORKDIR /app

# Dependencies first, from pyproject.toml alone, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p bot cogs migrations \
    && touch bot/__init__.py cogs/__init__.py migrations/__init__.py \
    && pip install . \
    && pip uninstall -y achievements-bot \
    && rm -rf bot cogs migrations build *.egg-info

COPY bot ./bot
COPY cogs ./cogs
COPY discord_sim ./discord_sim
COPY migrations ./migrations
RUN pip install --no-deps . && mkdir -p /app/data && chown -R bot:bot /app/data

USER bot
VOLUME ["/app/data"]
CMD ["python", "-m", "bot"]
