# One image for the coordinator and the worker. Build with a CUDA torch for GPU workers:
#   docker build --build-arg TORCH=torch==2.13.0 -t autoresearch-network .
FROM python:3.11-slim

ARG TORCH=torch==2.13.0
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN pip install "${TORCH}"
COPY pyproject.toml README.md ./
COPY coordinator coordinator
COPY worker worker
COPY shared shared
COPY baseline baseline
COPY migrations migrations
# Nothing runs as root: a worker trains other people's code. The volumes' mount points exist in the
# image, owned by arn, so Docker creates named volumes there that arn can write.
RUN pip install . \
    && useradd --create-home --uid 1000 arn \
    && mkdir -p /data /home/arn/worker \
    && chown arn:arn /data /home/arn/worker \
    && chmod 700 /home/arn/worker
USER arn
EXPOSE 8000
CMD ["coordinator", "serve", "--host", "0.0.0.0", "--port", "8000"]
