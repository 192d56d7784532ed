# syntax=docker/dockerfile:1
# One image per service, from one file: `docker build --target booking|notifier|audit .`
# The build stage installs the pinned runtime requirements (no test or dev tools) and the five local packages;
# each service stage copies that virtualenv onto a clean slim base and runs as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements-build.txt requirements-runtime.txt ./
# The build backend lives outside the runtime virtualenv; the wheels are built without build isolation,
# so nothing unpinned is fetched.
RUN python -m pip install --no-deps -r requirements-build.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps -r requirements-runtime.txt
COPY contracts/ contracts/
COPY services/runtime/ services/runtime/
COPY services/booking/ services/booking/
COPY services/notifier/ services/notifier/
COPY services/audit/ services/audit/
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels \
        ./contracts ./services/runtime ./services/booking ./services/notifier ./services/audit \
    && /opt/venv/bin/pip install --no-deps /wheels/*.whl \
    && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HTTP_HOST=0.0.0.0 \
    LOG_JSON=true
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /opt/healthcheck.py
USER 10001:10001
WORKDIR /tmp
# uvicorn turns SIGTERM into a graceful shutdown: HTTP drains, then consumers cancel and settle in-flight messages.
STOPSIGNAL SIGTERM

FROM runtime AS booking
ENV HTTP_PORT=8001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 CMD ["python", "/opt/healthcheck.py"]
ENTRYPOINT ["booking"]
CMD ["serve"]

FROM runtime AS notifier
ENV HTTP_PORT=8002
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 CMD ["python", "/opt/healthcheck.py"]
ENTRYPOINT ["notifier"]
CMD ["serve"]

FROM runtime AS audit
ENV HTTP_PORT=8003
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 CMD ["python", "/opt/healthcheck.py"]
ENTRYPOINT ["audit"]
CMD ["serve"]
