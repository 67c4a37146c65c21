# slurmrun: static Go entrypoint for TensorRT-LLM's Slurm test jobs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -checklinkname=0 -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export CGO_ENABLED := 0
# slurmrun_fwdsig: read the inherited signal state from the runtime (see container/sigstate.go).
TAGS    := slurmrun_fwdsig

.PHONY: build test unit integration fuzz-seeds demo bench deps vet clean

build:
	$(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o bin/slurmrun ./cmd/slurmrun

# deps installs what the tests run for real (Debian packages); a no-op when present.
deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

# test runs every test: units, the fuzz seed corpora, and the integration
# tests that run bin/slurmrun against real pytest, pip, git and processes.
test: deps build vet
	$(GO) test -count=1 -timeout 15m ./...

demo: build
	./bin/slurmrun demo

bench: deps build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 20m ./cmd/slurmrun

clean:
	rm -rf bin
