# Go drop-in replacement for Debian's rpcbind. `make` lists the targets.

export PATH := /usr/local/go/bin:$(PATH)

GO          ?= go
BIN         ?= bin
PREFIX      ?= /usr
DESTDIR     ?=
SBINDIR     ?= $(PREFIX)/sbin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MANDIR      ?= $(PREFIX)/share/man
TESTTIMEOUT ?= 15m
FUZZTIME    ?= 10s
BENCHTIME   ?= 1s
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
# The project's version: the nearest tag, commits since, the commit, -dirty.
# rpcbind --version prints it (a build without it falls back on the VCS
# stamp of the binary, then on "devel").
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS     := -X main.version=$(VERSION)

.PHONY: help go-check deps build test test-reduced fuzz fuzz-ci bench bench-compare bench-attack bench-instructions run install e2e-nspawn deb clean fmt vet

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

go-check: ## fail, saying what to install, unless Go is at least go.mod's version
	@.ci/go-check $(GO)

deps: ## install the Debian packages the tests need (.ci/deps; root); `.ci/deps --dry-run` shows them
	$(SUDO) .ci/deps

build: go-check ## build every command into bin/ (the first build downloads the Go modules)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

SKIPLOG     := $(abspath $(BIN))/skipped.txt

test: go-check ## as root: install what the tests need, download modules, vet, run every test (-race, the real-systemd one too)
	@[ "$$(id -u)" = 0 ] || { echo "make test: needs root (namespaces, port 111, a container); sudo make test, or make test-reduced" >&2; exit 1; }
	.ci/deps
	$(GO) mod download
	$(GO) vet ./...
	RPCBIND_NSPAWN=1 RPCBIND_REDUCED=0 $(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...

test-reduced: go-check ## run the tests this machine can (no root, tools, container needed); list what was skipped
	@mkdir -p $(BIN); rm -f $(SKIPLOG)
	$(GO) vet ./...
	@RPCBIND_REDUCED=1 RPCBIND_SKIPLOG=$(SKIPLOG) $(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./...; rc=$$?; \
	if [ -s $(SKIPLOG) ]; then echo "make test-reduced: $$(wc -l < $(SKIPLOG)) tests skipped for lack of something (make test runs them):"; sort $(SKIPLOG) | sed 's/^/  /'; \
	else echo "make test-reduced: nothing skipped"; fi; exit $$rc

fuzz: ## run every Fuzz target in the repo for FUZZTIME each (default 10s)
	FUZZTIME=$(FUZZTIME) .ci/fuzz.sh

FUZZCITIME  ?= 20s
fuzz-ci: ## fuzz the dispatch (service, guard), the stream record reader and the stream engine for FUZZCITIME each (CI)
	.ci/fuzz-one.sh ./internal/service FuzzServeRPC $(FUZZCITIME)
	.ci/fuzz-one.sh ./internal/guard FuzzGuard $(FUZZCITIME)
	.ci/fuzz-one.sh ./internal/rpc FuzzRecordReader $(FUZZCITIME)
	.ci/fuzz-one.sh ./internal/server FuzzStreamEngine $(FUZZCITIME)

bench: ## run all benchmarks with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

BENCHSECS   ?= 3
BENCHROUNDS ?= 3
bench-compare: build ## ours vs Debian's rpcbind vs a C responder, each in its own namespace on port 111; medians of BENCHROUNDS
	@mkdir -p $(BIN)
	gcc -O2 -o $(BIN)/responder testdata/bench/responder.c
	cmd/rpcbench/bench-compare.sh $(BIN)/rpcbind $(BIN)/rpcbench $(BIN)/responder $(BENCHSECS) $(BENCHROUNDS)

ATTACKSECS  ?= 5
ATTACKNICE  ?= 0
bench-attack: build ## ours vs Debian's rpcbind under each attack (remote namespace, local nobody): victim loss, p50/p99, max RSS; ATTACKSECS each
	$(SUDO) $(BIN)/rpcbench attack-bench -ours $(BIN)/rpcbind -ref /usr/sbin/rpcbind -secs $(ATTACKSECS) -nice $(ATTACKNICE) -out testdata/bench/bench-attack-$$(date -u +%F).txt

INSTRN      ?= 800
bench-instructions: build ## instructions (cachegrind) and syscalls per call, ours vs Debian's rpcbind, calls 1 ms apart and back to back; slope over N, 2N, 3N calls (INSTRN)
	$(SUDO) $(BIN)/rpcbench instr-bench -ours $(BIN)/rpcbind -ref /usr/sbin/rpcbind -n $(INSTRN) -out testdata/bench/bench-instructions-$$(date -u +%F).txt

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet ./...
	$(GO) vet ./...

run: build ## set up user _rpc and /run/rpcbind if missing, then run the daemon in the foreground (-f -w); refuses if port 111 is taken
	@if command -v ss >/dev/null && [ -n "$$(ss -Hlntu 'sport = :111')" ]; then \
		echo "make run: port 111 is already in use:" >&2; \
		ss -lntup 'sport = :111' >&2; \
		echo "stop the system rpcbind first (systemctl stop rpcbind.socket rpcbind.service)" >&2; \
		exit 1; \
	fi
	@# Debian's rpcbind package creates _rpc (gid nogroup) and /run/rpcbind; do the same when it is absent.
	@id _rpc >/dev/null 2>&1 || $(SUDO) useradd --system --no-create-home --home-dir /run/rpcbind --shell /usr/sbin/nologin --gid nogroup _rpc
	@$(SUDO) install -d -m 0755 -o _rpc -g root /run/rpcbind
	$(SUDO) $(abspath $(BIN))/rpcbind -f -w

install: build ## install daemon, rpcinfo, units, tmpfiles, sysusers and man pages into $(DESTDIR)$(PREFIX) (Debian's paths)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/tmpfiles.d $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BIN)/rpcbind $(DESTDIR)$(SBINDIR)/rpcbind
	if [ -x $(BIN)/rpcinfo ]; then install -m 0755 $(BIN)/rpcinfo $(DESTDIR)$(SBINDIR)/rpcinfo; fi
	install -m 0644 systemd/rpcbind.service systemd/rpcbind.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/rpcbind.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/rpcbind.conf
	install -m 0644 systemd/rpcbind.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/rpcbind.conf
	gzip -9nc cmd/rpcbind/rpcbind.8 > $(DESTDIR)$(MANDIR)/man8/rpcbind.8.gz
	if [ -f cmd/rpcinfo/rpcinfo.8 ]; then gzip -9nc cmd/rpcinfo/rpcinfo.8 > $(DESTDIR)$(MANDIR)/man8/rpcinfo.8.gz; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemd-sysusers rpcbind.conf; systemd-tmpfiles --create rpcbind.conf; systemctl daemon-reload; \
	fi

e2e-nspawn: ## boot a Debian container under a real systemd: our install over Debian's rpcbind, then the package swap (root)
	RPCBIND_NSPAWN=1 $(GO) test -count=1 -v -run 'TestSystemdE2E|TestDebSwap' ./internal/nspawntest

deb: ## build bin/openrpcbind_<version>_<arch>.deb, replacing Debian's rpcbind (reproducible; VERSION= overrides git describe)
	GO=$(GO) systemd/debian/mkdeb.sh $(BIN)

clean: ## remove build outputs and test caches
	rm -rf $(BIN)
	$(GO) clean -testcache
