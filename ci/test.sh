#!/usr/bin/env bash
# The body of `make test`: installs what the tests need on a fresh Debian machine, then runs every suite.
# As root it also runs the tests that need network namespaces, real etcd and a real kube-apiserver;
# with CI=true those tests fail instead of skipping when a service is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=ci/test-env.sh
source ci/test-env.sh

step() { printf '\n== %s\n' "$*"; }

step "MSI tools (installer/windows tests build and inspect the MSI)"
bash ci/deps.sh wixl msitools osslsigncode openssl

step "generated code and CRDs match the Go types"
bash ci/gen-crds.sh --check

step "the rendered manifest and the chart's CRDs match the chart (Helm SDK)"
make --no-print-directory check-manifests

step "go vet (linux)"
go vet ./...

step "golangci-lint (linux and windows)"
make --no-print-directory lint

step "go test (linux)"
# -p 2: two cores; the suites that start etcd/kube-apiserver are heavy. 55m: linux/lab/e2e runs the
# conformance cases on three nodes over two encapsulations plus the Kubernetes-datastore and Windows-node labs (about 30 minutes on 2 cores).
go test -count=1 -p 2 -timeout 55m ./...

step "IPIP in a Debian kernel under qemu (this machine's kernel has no ipip module; linux/routing TestKernelIPIP)"
if [[ $EUID -eq 0 ]]; then
	bash ci/qemu-ipip.sh
else
	echo "skipped: needs root"
fi

step "windows/amd64: build, vet and compile the test binaries"
make --no-print-directory cross

step "windows/amd64: run the test binaries under wine"
make --no-print-directory wine-test

echo
echo "make test: all suites passed"
