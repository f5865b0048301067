# One image for web, workers and beat; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN HANDOFF_ENV=development python manage.py collectstatic --noinput
RUN useradd --create-home handoff && mkdir -p /data && chown handoff /data
USER handoff
EXPOSE 8000
CMD ["bash", "scripts/docker/web.sh"]
