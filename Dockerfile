# PSL Studio: the dashboard and a worker in one CPU image.
#   docker build -t psl-studio .
#   docker run -p 127.0.0.1:8501:8501 -v psl-data:/data psl-studio
#
# SECURITY: PSL Studio has no login. Inside the container it binds 0.0.0.0 so that Docker can
# forward the port; publish it on the loopback only (as above), or put it behind a reverse proxy
# that authenticates users (e.g. nginx/Caddy/Traefik with basic auth or OAuth) before exposing it
# to a network: anyone who can reach the port can queue, cancel and delete experiments.
#
# PostgreSQL instead of the SQLite file in /data:
#   docker run -e PSL_DATABASE_URL=postgresql+psycopg://user:pass@db:5432/psl ... psl-studio
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PSL_HOME=/data

# tini as PID 1: forwards SIGTERM/SIGINT to `psl ui`, which stops its worker between steps (the run
# goes back to the queue), and reaps zombie children. (`docker run --init` would do the same.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/psl-studio

# Dependency layer first, so that editing the code does not reinstall torch & co.:
# the CPU build of torch (installing the package must not pull CUDA wheels), then the package's
# dependencies read from pyproject.toml alone, with the PostgreSQL driver (the `postgres` extra).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.3"
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, then the package itself without touching the dependencies installed above.
COPY psl_core ./psl_core
COPY storage ./storage
COPY app ./app
COPY pages ./pages
RUN pip install --no-deps ".[postgres]"

# An unprivileged user owns the data volume; the application never runs as root.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin psl \
    && mkdir -p /data \
    && chown psl:psl /data
USER psl

# Runs, metrics and checkpoints live here (SQLite by default; set PSL_DATABASE_URL for PostgreSQL).
VOLUME ["/data"]
EXPOSE 8501

# Streamlit's own health endpoint; no curl in the slim image, so Python asks it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["psl", "ui", "--address", "0.0.0.0", "--port", "8501"]
