# Python 3.11, the interpreter requirements.lock is compiled for; the digest names the multi-architecture
# index (linux/amd64 and linux/arm64).
FROM python:3.11.17-slim-bookworm@sha256:2333bd330d12de02514770b3585cad313644316047cdee24a7acfdece6de6efb AS python

# The dependencies, installed apart and cut to what a run uses: the wheels' test suites and
# command-line scripts go, and their extension modules lose the symbols only a debugger reads
# (2.8 of their 4.3 MB). Hash-based bytecode stays valid whatever the copy does to file times.
FROM python AS dependencies
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /requirements.lock
RUN pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes --no-deps --no-compile --target /deps -r /requirements.lock \
    && rm -rf /deps/bin \
    && find /deps -depth -type d \( -name tests -o -name benchmarks \) -exec rm -rf '{}' + \
    && find /deps -name '*.so' -exec strip --strip-unneeded '{}' + \
    && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /deps

FROM python

# The repository's public address, given by whoever publishes the image.
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="northflank-build-action" \
      org.opencontainers.image.description="Start a Northflank build from any CI, wait for it, and report its outcome." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

# tini is PID 1 and passes a stop on to the program's whole process group, also when a CI's shell
# started it; ps and kill (procps) are how Jenkins' docker agent finds and stops a step's processes.
# Versions follow the pinned base's Debian release and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini procps \
    && rm -rf /var/lib/apt/lists/* /usr/bin/tini-static /var/lib/dpkg/*-old /var/log/apt/* \
        /var/log/dpkg.log

# The bytecode the base leaves out: the standard library's, and that of the modules the base's
# site-packages import at every start (setuptools' _distutils_hack). Without it every run compiles
# what it imports again, as PYTHONDONTWRITEBYTECODE keeps it from being cached. Left out: pip,
# setuptools and wheel, and the stdlib's tools and other runtimes, which no run imports (IDLE,
# tkinter, 2to3, pydoc's data, distutils, ensurepip, venv). One word per site-packages folder.
# hadolint ignore=SC2046
RUN python -m compileall -q -j 0 \
        -x '/(pip|setuptools|pkg_resources|wheel|idlelib|tkinter|turtledemo|lib2to3|pydoc_data|distutils|ensurepip|venv)/' \
        "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
        $(python -c 'import site; print(*site.getsitepackages())')

# Dependencies before the code, so a change to the program reuses this layer.
COPY --from=dependencies /deps /app/lib
COPY action.yml entrypoint.py docker-entrypoint.py /app/
COPY northflank_build/ /app/northflank_build/
# Bytecode compiled once here: PYTHONDONTWRITEBYTECODE would have every run compile it again.
# northflank-build is the command other CI systems run inside the image; the .pth file puts /app
# and its dependencies on every interpreter's path, for `python -m northflank_build` as well.
RUN python -m compileall -q -x '^/app/lib/' /app \
    && chmod 755 /app/entrypoint.py /app/docker-entrypoint.py \
    && ln -s /app/entrypoint.py /usr/local/bin/northflank-build \
    && printf '/app\n/app/lib\n' \
        > "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/northflank-build.pth"

# No USER or WORKDIR: GitHub runs container actions as root, with the workspace mounted as the working directory.
# No shell between the runner and the program: see docker-entrypoint.py.
ENTRYPOINT ["/usr/bin/tini", "-g", "-s", "--", "/app/docker-entrypoint.py"]
