# One image for every Swarmdeck process: web (Daphne), beat, load workers, migrations.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# bubblewrap sandboxes locustfiles on load workers (workers/sandbox.py).
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 swarmdeck && mkdir -p /app/var && chown swarmdeck /app/var
USER swarmdeck

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "controlcenter.asgi:application"]
