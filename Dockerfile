# PSL Studio: the dashboard and a worker in one CPU image.
#   docker build -t psl-studio .
#   docker run -p 8501:8501 -v psl-data:/data psl-studio
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PSL_HOME=/data

WORKDIR /opt/psl-studio
# The CPU build of torch first, so that installing the package does not pull CUDA wheels.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.3"
COPY pyproject.toml README.md ./
COPY psl_core ./psl_core
COPY storage ./storage
COPY app ./app
COPY pages ./pages
RUN pip install -e .

# Runs, metrics and checkpoints live here (SQLite by default; set PSL_DATABASE_URL for PostgreSQL).
VOLUME ["/data"]
EXPOSE 8501
CMD ["psl", "ui", "--address", "0.0.0.0", "--port", "8501"]
