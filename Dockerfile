# rtfast bridge image. Stage 1 builds the wheel (compilers and Cython stay there);
# stage 2 installs only that wheel and its runtime dependencies, and runs as a
# non-root user. See docs/deploying.md.
#
#   docker build -t rtfast .
#   docker run -p 8080:8080 -e OPENAI_API_KEY rtfast
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
COPY rtfast ./rtfast
# The wheel and every runtime dependency's, so the runtime stage needs no index and no compiler.
RUN pip wheel --no-cache-dir -w /wheels .

FROM python:3.11-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home rtfast
USER 10001
# --workers defaults to the cores the container may use (its CPU affinity); set it to
# the pod's CPU limit when the limit is below the node's cores.
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
# Exec form: the bridge is PID 1, so the runtime's SIGTERM reaches it and starts the drain
# (it handles SIGTERM and SIGINT itself and reaps its own workers).
ENTRYPOINT ["rtfast", "bridge", "--listen", "0.0.0.0:8080", "--log-format", "json"]
CMD ["--carrier", "twilio"]
