# homevitals server-side image (ingest, alerts engine, webhook delivery). The gateway runs on
# the patient's home hub, not in this image's deployment (see README: gateway).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY devices devices
COPY bumble_bleak bumble_bleak
COPY gateway gateway
COPY ingest ingest
COPY alerts alerts
COPY firmware_sims firmware_sims
COPY homevitals homevitals
COPY api api
RUN pip install --no-cache-dir . && useradd --system --uid 10001 homevitals
USER homevitals
ENTRYPOINT ["homevitals"]
