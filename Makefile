# Causeway — make help lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO          ?= go
BIN         := bin/causeway
RUN_DIR     ?= .run
# staticcheck 2026.2.2 is module version v0.8.2 (the proxy serves the module version).
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 15s
GOBIN       := $(shell $(GO) env GOPATH)/bin

# Integration tests read these; they skip locally without them and fail under CI=true.
export CAUSEWAY_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export CAUSEWAY_TEST_MYSQL_DSN ?= root@tcp(127.0.0.1:3306)/

# One recipe at a time, whatever -j MAKEFLAGS carries: make test's
# prerequisites must not overlap (the services come up before the tests
# that use them, and the chaos tests stop and start RabbitMQ and MariaDB),
# and every recipe is a go command that uses every core by itself.
.NOTPARALLEL:

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/causeway
	$(GO) build -o $(BIN) ./cmd/causeway

.PHONY: services
services: ## install and start RabbitMQ and MariaDB when missing (idempotent)
	@deploy/services.sh up

.PHONY: tools
tools: ## install the test tools that come from Debian packages (systemd-analyze)
	@command -v systemd-analyze >/dev/null || { echo "installing systemd (for systemd-analyze)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd >/dev/null; }; }

.PHONY: install
install: build ## install binary, units, config, templates and the causeway user (DESTDIR= stages them)
	deploy/install.sh --bin $(BIN) $(if $(DESTDIR),--destdir $(DESTDIR)) $(if $(NODES),--nodes $(NODES))

.PHONY: run
run: services build ## run a local cluster on a sample topology and print an RCA
	@deploy/dev/cluster.sh start

.PHONY: stop
stop: ## stop the local cluster started by make run
	@deploy/dev/cluster.sh stop

.PHONY: test
test: services tools lint test-unit test-chaos test-e2e ## the whole suite: lint, unit+integration (-race), chaos, end-to-end

.PHONY: test-unit
test-unit: ## unit and integration tests with -race
	$(GO) test -race -count=1 -timeout 15m ./...

.PHONY: test-chaos
test-chaos: ## tests that restart RabbitMQ/MariaDB (run one package at a time)
	$(GO) test -race -count=1 -p 1 -tags chaos -run 'Chaos' -timeout 15m ./...

.PHONY: test-e2e
test-e2e: build ## end-to-end tests with real processes on loopback; prints the chaos test's table
	@mkdir -p $(RUN_DIR) && rm -f $(RUN_DIR)/chaos-table.txt
	CAUSEWAY_E2E_TABLE=$(abspath $(RUN_DIR))/chaos-table.txt $(GO) test -count=1 -p 1 -tags e2e -run 'E2E' -timeout 20m ./...
	@cat $(RUN_DIR)/chaos-table.txt

.PHONY: bench
bench: services ## run every benchmark (and the failover one over real processes) and write bench-report.txt
	set -o pipefail; { $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...; \
	  $(GO) test -tags e2e -run '^$$' -bench E2E -benchtime 3x -timeout 20m ./processor/; } 2>&1 | $(GO) run ./cmd/benchreport | tee bench-report.txt

.PHONY: fuzz
# A package whose tests do not build lists no fuzz target: that is a failure,
# not a package without any.
fuzz: ## run every fuzz target for FUZZTIME each (a failing input is minimised for 100 runs at most, not 60s of the window)
	@set -e; pkgs=$$($(GO) list ./...); for pkg in $$pkgs; do \
	  list=$$($(GO) test -list '^Fuzz' $$pkg) || { echo "$$list"; echo "make fuzz: cannot list the fuzz targets of $$pkg"; exit 1; }; \
	  for f in $$(grep '^Fuzz' <<<"$$list" || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	  done; done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags chaos,e2e ./...
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	$(GOBIN)/staticcheck -tags chaos,e2e ./...

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: tidy-check
tidy-check: ## fail when go.mod/go.sum are not tidy
	$(GO) mod tidy -diff

.PHONY: clean
clean: ## stop the local cluster if it runs, then remove build output and its state
	@if compgen -G '$(RUN_DIR)/*.pid' >/dev/null; then RUN_DIR='$(abspath $(RUN_DIR))' deploy/dev/cluster.sh stop; fi
	rm -rf bin $(RUN_DIR) bench-report.txt
