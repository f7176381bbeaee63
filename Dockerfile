# One image for the web console, the Celery worker and Celery beat
# (docker-compose.yml chooses the command).

# Front-end libraries that no Python package ships (Cytoscape.js for the
# tracing diagram): installed from package-lock.json and copied into
# static/vendor by package.json's "vendor" script, which needs nothing but
# node_modules. Templates load them through {% static %}, which fails in
# production when the manifest lacks them.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
RUN npm run vendor

FROM python:3.13-slim

# PYTHONPATH: manage.py, gunicorn and celery import the project from /app,
# next to templates/ and static/, rather than the copy pip installs into
# site-packages along with the dependencies.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

RUN useradd --create-home --uid 10001 --user-group secops

WORKDIR /app
COPY . .
# .dockerignore leaves out a local static/vendor: the image gets the one built above.
COPY --from=assets /assets/static/vendor /app/static/vendor
RUN pip install . \
    && mkdir -p /app/var \
    && chown secops:secops /app/var

USER secops
EXPOSE 8000
# secops/gunicorn_conf.py keeps the Prometheus metrics of the three workers
# together (multiprocess mode); the console logs each request itself.
CMD ["gunicorn", "secops.wsgi", "--config", "python:secops.gunicorn_conf", "--bind", "0.0.0.0:8000", "--workers", "3"]
