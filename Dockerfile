# xinfang: one image for every process of the distributed deployment
# (web, worker, scheduler, migrate); docker-compose.yml picks the command.
#
#   docker build -t xinfang .
#   docker run --rm -p 8000:8000 xinfang          # embedded mode: `xinfang up`
#
# No secrets are baked in: XINFANG_SECRET_KEY, database URLs and the broker URL
# come from the environment at run time (see shared/config.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    XINFANG_DATA_DIR=/var/lib/xinfang

# Unprivileged user (numeric id so orchestrators can verify runAsNonRoot) and
# its data folder: SQLite files in embedded mode, clock state, exports.
RUN groupadd --system --gid 10001 xinfang \
 && useradd --system --uid 10001 --gid xinfang --home-dir /var/lib/xinfang \
        --no-create-home --shell /usr/sbin/nologin xinfang \
 && install -d -o xinfang -g xinfang -m 0750 /var/lib/xinfang

# Only what the package build needs (there is no .dockerignore: copy explicitly).
WORKDIR /opt/xinfang/src
COPY pyproject.toml ./
COPY shared/ shared/
COPY intake_svc/ intake_svc/
COPY assign_svc/ assign_svc/
COPY supervise_svc/ supervise_svc/
COPY notify_svc/ notify_svc/
RUN pip install . \
 && xinfang --help >/dev/null

USER 10001:10001
WORKDIR /var/lib/xinfang
EXPOSE 8000

# Exec form, no shell: the process receives SIGTERM directly (compose adds
# `init: true` so PID 1 forwards signals and reaps children).
CMD ["xinfang", "up", "--host", "0.0.0.0", "--port", "8000"]
