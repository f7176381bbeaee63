# One image for the web console, the Celery worker and Celery beat
# (docker-compose.yml chooses the command).
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
RUN pip install . \
    && mkdir -p /app/var \
    && chown secops:secops /app/var

USER secops
EXPOSE 8000
CMD ["gunicorn", "secops.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
