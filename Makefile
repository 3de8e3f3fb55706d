# Go drop-in replacement for Debian's rpcbind. `make` lists the targets.

export PATH := /usr/local/go/bin:$(PATH)

GO          ?= go
BIN         ?= bin
PREFIX      ?= /usr
DESTDIR     ?=
SBINDIR     ?= $(PREFIX)/sbin
TESTTIMEOUT ?= 15m
FUZZTIME    ?= 10s
BENCHTIME   ?= 1s
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help build test fuzz bench bench-compare run install clean fmt vet

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build every command into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: ## vet and run all tests with the race detector (root runs the namespace tests)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...

fuzz: ## run every Fuzz target in the repo for FUZZTIME each (default 10s)
	FUZZTIME=$(FUZZTIME) .ci/fuzz.sh

bench: ## run all benchmarks with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

BENCHSECS   ?= 3
BENCHROUNDS ?= 3
bench-compare: build ## ours vs Debian's rpcbind vs a C responder, each in its own namespace on port 111; medians of BENCHROUNDS
	@mkdir -p $(BIN)
	gcc -O2 -o $(BIN)/responder testdata/bench/responder.c
	cmd/rpcbench/bench-compare.sh $(BIN)/rpcbind $(BIN)/rpcbench $(BIN)/responder $(BENCHSECS) $(BENCHROUNDS)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet ./...
	$(GO) vet ./...

run: build ## run the daemon in the foreground (sudo ./bin/rpcbind -f -w); refuses if port 111 is taken
	@if [ -n "$$(ss -Hlntu 'sport = :111')" ]; then \
		echo "make run: port 111 is already in use:" >&2; \
		ss -lntup 'sport = :111' >&2; \
		echo "stop the system rpcbind first (systemctl stop rpcbind.socket rpcbind.service)" >&2; \
		exit 1; \
	fi
	$(SUDO) ./$(BIN)/rpcbind -f -w

install: build ## install into $(DESTDIR)$(PREFIX) (placeholder: binaries only)
	install -d $(DESTDIR)$(SBINDIR)
	install -m 0755 $(BIN)/rpcbind $(DESTDIR)$(SBINDIR)/rpcbind
	@# TODO(lead): rpcinfo, man pages, systemd units, tmpfiles, sysusers

clean: ## remove build outputs and test caches
	rm -rf $(BIN)
	$(GO) clean -testcache
