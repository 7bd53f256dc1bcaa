# termd — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin
PKGS    := ./...
FUZZTIME ?= 10s

.PHONY: run test test-deps build bench fuzz vet clean

## run: build and start termd in dev mode (127.0.0.1:7000 TGP, 127.0.0.1:7080 admin, data in ./var);
##      other ports: make run LISTEN=127.0.0.1:7100 ADMIN=127.0.0.1:7180
LISTEN ?=
ADMIN  ?=
run: build
	./$(BIN)/termd -dev -config examples/dev.toml $(if $(LISTEN),-listen $(LISTEN)) $(if $(ADMIN),-admin $(ADMIN))

## test: vet and run every test with the race detector (installs haproxy for the PROXY protocol test
##       and chromium for the console's browser tests)
test: vet test-deps sdk-c-test
	$(GO) test -race -count=1 $(PKGS)

# test-deps: programs the integration tests run (Debian's haproxy and chromium)
test-deps:
	./scripts/ensure-haproxy.sh
	./scripts/ensure-chromium.sh

vet:
	$(GO) vet $(PKGS)

## build: build termd and termctl into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

## bench: micro-benchmarks (codec, protocol, storage, server)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./codec/ ./protocol/... ./storage/ ./server/...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf $(BIN)

.PHONY: crash-test
KILLS ?= 20

## crash-test: kill -9 termd KILLS times at random moments under load; prints "N acknowledged, 0 lost" (a 3-kill variant runs in make test)
crash-test: build
	./$(BIN)/termload crash -termd ./$(BIN)/termd -kills $(KILLS)

.PHONY: bench-load bench-peer

## bench-load: termload's standard set against the termd `make run` started; JSON, charts and a table in ./var/bench
bench-load: build
	./loadtest/scripts/bench-load.sh

## bench-peer: termd, mosquitto (installed if missing) and a bare gnet server under the same load, RUNS=3 times; prints the comparison table and writes it into docs/performance.md (DOCS= to skip)
bench-peer: build
	./loadtest/scripts/bench-peer.sh

# ---- C firmware SDK (sdk/c) ------------------------------------------------
.PHONY: sdk-c sdk-c-test sdk-c-size

## sdk-c: build the C SDK, its posix_terminal example and unit tests (gcc, and clang if installed); run the unit tests
sdk-c:
	$(MAKE) -C sdk/c all

## sdk-c-test: C unit tests, again under ASan+UBSan, and a brief fuzz run (the end-to-end test runs in `go test ./sdk/...`)
sdk-c-test:
	$(MAKE) -C sdk/c test

## sdk-c-size: Cortex-M4 text/data/bss of the C SDK; installs gcc-arm-none-eabi when missing
sdk-c-size:
	@command -v arm-none-eabi-gcc >/dev/null || { apt-get update && apt-get install -y gcc-arm-none-eabi; }
	$(MAKE) -C sdk/c size

.PHONY: install

# install: termd and termctl into $(DESTDIR)$(PREFIX)/bin, the systemd unit
# into $(DESTDIR)/lib/systemd/system (its ExecStart pointed at PREFIX), and
# the example config into $(DESTDIR)/etc/termd/termd.toml unless one is
# already there (an operator's config is never overwritten). Creates no
# user and starts nothing: see docs/operations.md, "Deploying".
PREFIX  ?= /usr/local
DESTDIR ?=
SYSTEMD_UNIT_DIR ?= /lib/systemd/system

## install: install binaries, unit and example config (PREFIX=/usr/local, DESTDIR= for staging)
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)/etc/termd
	install -m 0755 $(BIN)/termd $(BIN)/termctl $(DESTDIR)$(PREFIX)/bin/
	sed 's|/usr/local/bin/termd|$(PREFIX)/bin/termd|' deploy/termd.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/termd.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/termd.service.tmp
	mv $(DESTDIR)$(SYSTEMD_UNIT_DIR)/termd.service.tmp $(DESTDIR)$(SYSTEMD_UNIT_DIR)/termd.service
	@if [ -e $(DESTDIR)/etc/termd/termd.toml ]; then \
		echo "kept $(DESTDIR)/etc/termd/termd.toml (exists); the example is deploy/termd.toml"; \
	else \
		install -m 0644 deploy/termd.toml $(DESTDIR)/etc/termd/termd.toml; \
	fi
