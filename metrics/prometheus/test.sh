#!/usr/bin/env bash
# Vets and tests the Prometheus metrics module, which has a go.mod of its
# own and so is not covered by `go test ./...` at the repository root.
# Extra arguments go to `go test` (for example -race).
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test "$@" ./...
