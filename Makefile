# tortie — `make help` lists the targets. `make test` is the one command CI and newcomers run.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/tortie-net/tortie/common/version.Version=$(VERSION)
GOTOOLS   := $(GO) tool -modfile=ci/tools/go.mod
# Binaries built for every target platform (those with a main package).
CMDS      := $(notdir $(patsubst %/,%,$(dir $(wildcard cmd/*/main.go))))

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build linux/amd64 and windows/amd64 binaries into bin/
	@for c in $(CMDS); do \
	  echo "build $(BIN)/linux-amd64/$$c"; \
	  GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/$$c ./cmd/$$c; \
	  echo "build $(BIN)/windows-amd64/$$c.exe"; \
	  GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/windows-amd64/$$c.exe ./cmd/$$c; \
	done

.PHONY: cross
cross: ## build and vet every package for windows/amd64 (Windows logic compiles and is checked on Linux)
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...
	@# compile every test binary for windows; -exec true links them without running them here
	GOOS=windows GOARCH=amd64 $(GO) test -count=1 -exec /bin/true ./... >/dev/null

.PHONY: wine-test
wine-test: ## run the windows/amd64 test binaries under wine
	bash ci/wine.sh

.PHONY: msi
msi: ## build the x64 MSI for Windows nodes with wixl (installs msitools; SIGN_CERT/SIGN_KEY sign it)
	@mkdir -p $(BIN)/windows-amd64
	@for c in tortie-node tortiectl tortie-cni; do \
	  echo "build $(BIN)/windows-amd64/$$c.exe"; \
	  GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/windows-amd64/$$c.exe ./cmd/$$c; \
	done
	GIT_DESCRIBE=$(VERSION) bash installer/windows/build-msi.sh -o $(BIN)/tortie-x64.msi $(BIN)/windows-amd64

.PHONY: generate
generate: ## regenerate deepcopy code and CRD manifests from the Go types
	bash ci/gen-crds.sh

.PHONY: check-generated
check-generated: ## fail if generated code or CRDs drift from the Go types
	bash ci/gen-crds.sh --check

.PHONY: manifests
manifests: ## render the Helm chart into installer/kubernetes/tortie.yaml (Helm SDK, ci/helmrender) and refresh the chart's crds/
	cd ci/helmrender && $(GO) run . -chart ../../installer/kubernetes/helm/tortie -crds ../../installer/kubernetes/crds -o ../../installer/kubernetes/tortie.yaml

.PHONY: check-manifests
check-manifests: ## fail if installer/kubernetes/tortie.yaml or the chart's crds/ are out of date
	cd ci/helmrender && $(GO) run . -chart ../../installer/kubernetes/helm/tortie -crds ../../installer/kubernetes/crds -o ../../installer/kubernetes/tortie.yaml -check

.PHONY: lint
lint: ## golangci-lint for linux and windows
	$(GO) build -modfile=ci/tools/go.mod -o $(BIN)/tools/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	$(BIN)/tools/golangci-lint run --allow-parallel-runners ./...
	GOOS=windows $(BIN)/tools/golangci-lint run --allow-parallel-runners ./...

.PHONY: test
test: ## install what is needed (fresh Debian ok), then run unit, root-only (netns, etcd, kube-apiserver) and windows checks
	bash ci/test.sh

.PHONY: lab
lab: ## the demo (root): a 3-node tortie cluster in network namespaces, policies applied step by step (installs what it needs)
	@[[ "$$(id -u)" == 0 ]] || { echo "make lab: needs root (network namespaces, a bridge); run it as root" >&2; exit 1; }
	bash ci/deps.sh
	$(MAKE) --no-print-directory lab-build
	$(BIN)/linux-amd64/tortie-lab demo

.PHONY: lab-build
lab-build: ## build tortie-lab and the binaries it runs, with the fake-HNS builds for --windows-nodes, into bin/linux-amd64
	@mkdir -p $(BIN)/linux-amd64
	@echo "build $(BIN)/linux-amd64/{tortie-lab,tortie-node,tortie-cni}"
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/ ./cmd/tortie-lab ./cmd/tortie-node ./cmd/tortie-cni
	@echo "build $(BIN)/linux-amd64/{tortie-node-fakehns,tortie-cni-fakehns} (tortie_fakehns: the Windows dataplane and CNI on a fake HNS)"
	CGO_ENABLED=0 $(GO) build -tags tortie_fakehns -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/tortie-node-fakehns ./cmd/tortie-node
	CGO_ENABLED=0 $(GO) build -tags tortie_fakehns -ldflags '$(LDFLAGS)' -o $(BIN)/linux-amd64/tortie-cni-fakehns ./cmd/tortie-cni

.PHONY: ci
ci: test ## what CI runs

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)

.PHONY: bench
bench: ## run the benchmark pairs (ours vs baseline, interleaved) and print the ratio table
	bash ci/bench.sh
