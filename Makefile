# termd — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     := bin
PKGS    := ./...
FUZZTIME ?= 10s

.PHONY: run test build bench fuzz vet clean

## run: build and start termd in dev mode (127.0.0.1:7000 TGP, 127.0.0.1:7080 admin, data in ./var);
##      other ports: make run LISTEN=127.0.0.1:7100 ADMIN=127.0.0.1:7180
LISTEN ?=
ADMIN  ?=
run: build
	./$(BIN)/termd -dev -config examples/dev.toml $(if $(LISTEN),-listen $(LISTEN)) $(if $(ADMIN),-admin $(ADMIN))

## test: vet and run every test with the race detector
test: vet
	$(GO) test -race -count=1 $(PKGS)

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

.PHONY: bench-load bench-peer

## bench-load: termload's standard set against the termd `make run` started; JSON, charts and a table in ./var/bench
bench-load: build
	./loadtest/scripts/bench-load.sh

## bench-peer: the same load against mosquitto (installed if missing) and termd back to back, side by side
bench-peer: build
	./loadtest/scripts/bench-peer.sh
