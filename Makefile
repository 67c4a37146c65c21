# slurmrun: static Go entrypoint for TensorRT-LLM's Slurm test jobs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -checklinkname=0 -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export CGO_ENABLED := 0
# slurmrun_fwdsig: read the inherited signal state from the runtime (see container/sigstate.go).
TAGS    := slurmrun_fwdsig

.PHONY: build test demo bench deps slurm pyxis runtimes image sqsh vet clean

build:
	$(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o bin/slurmrun ./cmd/slurmrun

# deps installs what the tests run for real (Debian packages); a no-op when present.
deps:
	./scripts/install-deps.sh

# slurm starts the local two-node Slurm the launch tests use (root only;
# without it those tests skip and say so).
slurm:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/slurm-local.sh start; else echo "not root: the Slurm tests will be skipped"; fi

# pyxis builds enroot and pyxis from ../shared/vendor into the local Slurm
# (root only; without it the srun --container-image tests skip and say so).
pyxis: slurm
	@if [ "$$(id -u)" = 0 ]; then ./scripts/pyxis-setup.sh; else echo "not root: the pyxis tests will be skipped"; fi

# runtimes makes crun usable here (root only; the container tests skip without it).
runtimes:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/crun-setup.sh; else echo "not root: the container tests will be skipped"; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags $(TAGS) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

# test runs every test: units, the fuzz seed corpora, and the integration
# tests that run bin/slurmrun against real pytest, pip, git and processes;
# then the whole suite again with SIGHUP, SIGINT and SIGQUIT ignored (nohup,
# `cmd &`), bounded in processes. The tests build with the runtime's signal
# record, so a toolchain that changes it fails here (container/sigrecord_runtime.go).
GOTEST := $(GO) test -count=1 -tags $(TAGS) -ldflags=-checklinkname=0 -timeout 15m
# RACE_PKGS run again under the race detector (cgo: make deps installs gcc):
# every package; the binary the CLI tests start is built without it.
RACE_PKGS := ./...
test: deps build vet slurm pyxis runtimes
	$(GOTEST) ./...
	CGO_ENABLED=1 $(GOTEST) -race $(RACE_PKGS)
	./scripts/test-signals-ignored.sh $(GOTEST) ./...

# demo needs python3 with pytest: as root it installs Debian's (as make test
# does), otherwise it names the one command to run.
demo: build
	@/usr/bin/python3 -c 'import pytest' 2>/dev/null || python3 -c 'import pytest' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "demo: installing python3-pytest"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pytest >/dev/null; \
	  else echo "demo: pytest is missing: run  sudo apt-get install -y python3-pytest  and make demo again" >&2; exit 1; fi; }
	./bin/slurmrun demo

bench: deps build slurm pyxis
	$(GO) test -count=1 -tags $(TAGS) -ldflags=-checklinkname=0 -run '^$$' -bench . -benchtime 1x -timeout 20m ./cmd/slurmrun

# image builds the Containerfile with podman, buildah or docker, whichever is
# present. PREBUILT=1 adds bin/slurmrun instead of compiling in the build.
BASE_IMAGE ?= nvcr.io/nvidia/tensorrt-llm/release:latest
IMAGE      ?= localhost/slurmrun:$(VERSION)
TARGET     := $(if $(PREBUILT),prebuilt,image)
image: $(if $(PREBUILT),build)
	@tool=$$(command -v podman || command -v buildah || command -v docker) || { echo "image: install podman, buildah or docker" >&2; exit 1; }; \
	echo "$$tool build --target $(TARGET) --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) -f Containerfile ."; \
	"$$tool" build --target $(TARGET) --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) -f Containerfile .

# sqsh turns the image into the squashfs file pyxis runs (srun
# --container-image=FILE), with enroot import.
SQSH ?= bin/slurmrun-$(VERSION).sqsh
sqsh: image
	./scripts/enroot-import.sh $(IMAGE) $(SQSH)

clean:
	rm -rf bin
