#!/usr/bin/env bash
# Says in one line whether a Docker daemon answers, and how to start one if not.
set -u
sock="${DOCKER_HOST:-unix:///var/run/docker.sock}"
sock="${sock#unix://}"
if command -v curl >/dev/null 2>&1 && [ -S "$sock" ]; then
  curl -sf --max-time 5 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1 && exit 0
elif command -v docker >/dev/null 2>&1; then
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && exit 0
fi
echo "berth: no Docker daemon answers at $sock — start one (e.g. 'sudo systemctl start docker' or 'sudo dockerd &') and retry." >&2
exit 1
