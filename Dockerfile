# Python 3.11, the interpreter requirements.lock is compiled for; the digest names the multi-architecture
# index (linux/amd64 and linux/arm64).
FROM python:3.11.17-slim-bookworm@sha256:2333bd330d12de02514770b3585cad313644316047cdee24a7acfdece6de6efb

# The repository's public address, given by whoever publishes the image.
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="northflank-build-action" \
      org.opencontainers.image.description="Start a Northflank build from any CI, wait for it, and report its outcome." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

# Dependencies before the code, so a change to the program reuses this layer.
COPY requirements.lock /app/requirements.lock
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes --no-deps -r /app/requirements.lock

COPY action.yml entrypoint.py docker-entrypoint.sh /app/
COPY northflank_build/ /app/northflank_build/
# Bytecode compiled once here: PYTHONDONTWRITEBYTECODE would have every run compile it again.
RUN python -m compileall -q /app/northflank_build

# northflank-build is the command other CI systems run inside the image.
RUN chmod 755 /app/entrypoint.py /app/docker-entrypoint.sh \
    && ln -s /app/entrypoint.py /usr/local/bin/northflank-build

# No USER or WORKDIR: GitHub runs container actions as root, with the workspace mounted as the working directory.
# The entry point runs northflank-build, or the command a CI system starts the container with.
ENTRYPOINT ["/app/docker-entrypoint.sh"]
