# The bench_assets image. One image for the whole team deployment: the code server runs it, the
# runs the daemon launches execute in it (as subprocesses of the code server in docker-compose.yaml,
# as Kubernetes jobs with deploy/helm-values.yaml), and the webserver and daemon run it too.
# Not built in CI (no Docker there): bench_assets_tests/test_deploy_files.py checks what it declares.
#
#   docker build -t bench-assets:latest .                                      # CPU (the default)
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 -t bench-assets:cuda .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Optional pip index for torch and torchvision only: PyTorch's CPU-only wheel index makes a CPU image
# gigabytes smaller (the default wheels carry CUDA, which the CUDA base needs).
ARG TORCH_INDEX_URL=""

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    BENCH_DATA_DIR=/opt/bench/data \
    HF_HOME=/opt/bench/hf-cache

# Python 3.11 where the base has none (the CUDA bases), and the libraries OpenCV (RapidOCR) loads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
        $(command -v python3.11 >/dev/null || echo python3.11 python3.11-venv) \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv \
 && mkdir -p "$DAGSTER_HOME" "$BENCH_DATA_DIR" "$HF_HOME"

WORKDIR /opt/bench
COPY pyproject.toml README.md ./
COPY bench_assets ./bench_assets
# dagster-k8s (the k8s extra): run pods launched by the Helm chart load its instance config, which names it.
RUN pip install --upgrade pip \
 && if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch torchvision; fi \
 && pip install ".[k8s]"

# The instance template (rendered at start by the entrypoint), the compose workspace, and the prompt
# suites an empty data volume is given.
COPY dagster.yaml workspace.yaml ./
COPY deploy ./deploy
COPY data/prompts ./seed/prompts
RUN chmod +x deploy/entrypoint.sh

EXPOSE 3000 4000
ENTRYPOINT ["/opt/bench/deploy/entrypoint.sh"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "bench_assets.definitions", "--location-name", "bench_assets"]
