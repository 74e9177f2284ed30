# One image for the web server and the workers. Non-root, slim.
# CPU torch by default; for GPU workers build with
#   --build-arg TORCH_SPEC="torch==2.13.0" --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# torch first, from the index the build argument names, so pip never swaps in another build.
RUN pip install --index-url "$TORCH_INDEX" "$TORCH_SPEC"
COPY . .
# The versions CI tested (constraints.txt), not whatever is newest inside pyproject.toml's ranges that day.
RUN pip install -c constraints.txt . \
 && SECRET_KEY=build-only-not-secret-build-only-not-secret python manage.py collectstatic --noinput \
 && mkdir -p /app/var /app/shared && chown -R app:app /app/var /app/shared

# /app/shared is where docker-compose.yml mounts the volume the workers share: a new named volume takes the
# owner of the folder it is mounted on, and without this one it would be root's, which `app` cannot write.
USER app
EXPOSE 8000
# Web by default; workers run the same image with e.g.
#   celery -A core worker -Q default            (light work)
#   celery -A core worker -Q gpu --pool solo    (one process per GPU)
CMD ["gunicorn", "core.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
