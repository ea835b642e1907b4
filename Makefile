# KTE build, test and release targets. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

NAME     := kinesis-telemetry-extension
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
ARCHES   := amd64 arm64
GOTEST   ?= go test
PKGS     := ./...
FUZZTIME ?= 10s
BENCHCOUNT ?= 10
BENCHTIME ?= 300ms

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: bench-report flushbench deps-cdk demo synth build-host all deps fmt fmt-check vet lint test test-unit test-race test-cdk fuzz bench build layer demo synth clean

all: build

## deps: download Go modules and the Node tools (kinesalite) the tests and the demo use.
deps: tools/kinesalite/node_modules/.package-lock.json
	go mod download

# npm ci deletes node_modules before it installs, under the feet of any test or demo using kinesalite in this
# checkout, so it runs only when node_modules is missing or older than the lock files (npm writes
# node_modules/.package-lock.json last), under flock(1) when there is one, checking again once it holds the lock.
tools/kinesalite/node_modules/.package-lock.json: tools/kinesalite/package-lock.json tools/kinesalite/package.json
	@cd tools/kinesalite && lock=; if command -v flock >/dev/null; then lock="flock ."; fi; \
	$$lock sh -c 'if [ node_modules/.package-lock.json -nt package-lock.json ] && [ node_modules/.package-lock.json -nt package.json ]; then \
		echo "tools/kinesalite: node_modules is up to date"; \
	else \
		command -v npm >/dev/null || { echo "npm is needed to install kinesalite (Debian: apt-get install npm)" >&2; exit 1; }; \
		echo "tools/kinesalite: npm ci"; npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	fi'

## deps-cdk: the CDK app's modules (about 80 MB), for its tests and synth.
deps-cdk:
	cd cdk && go mod download

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^cdk/' ) ); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	go vet $(PKGS)

lint:
	go tool staticcheck -checks=all,-ST1000,-ST1003 $(PKGS)

## test: everything CI checks: format, vet, staticcheck, tests (shuffled), race tests, CDK tests.
test: deps deps-cdk fmt-check vet lint test-unit test-race test-cdk

test-unit:
	$(GOTEST) -shuffle=on -count=1 -timeout 15m $(PKGS)

test-race:
	$(GOTEST) -race -short -count=1 -timeout 15m $(PKGS)

test-cdk:
	@if [ -f cdk/go.mod ]; then \
		cd cdk && out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi; \
		go vet ./... && $$(cd .. && go tool -n staticcheck) -checks=all,-ST1000,-ST1003 ./... && \
		$(GOTEST) -count=1 -timeout 15m ./...; \
	else echo "cdk/: not present yet"; fi

## synth: the CloudFormation template in cdk/cdk.out from the real layer zips, no AWS credentials needed.
synth: deps-cdk layer
	cd cdk && CDK_OUTDIR=cdk.out go run .

## fuzz: a short run of every fuzz target (FUZZTIME each).
fuzz:
	@for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

## bench: benchmarks with -count for benchstat; results in bench/results/.
bench:
	mkdir -p bench/results
	go test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) -benchtime=$(BENCHTIME) -timeout 60m ./ring/ ./listener/ ./batch/ ./bench/... | tee bench/results/latest.txt
	go tool benchstat bench/results/latest.txt > bench/results/latest-benchstat.txt
	@cat bench/results/latest-benchstat.txt

## bench-report: ingest benchmarks, cold start, load (default and 20 KB log lines), layer sizes and the chart into bench/results/README.md.
bench-report:
	BENCHCOUNT=$(BENCHCOUNT) bench/run.sh

## flushbench: delivery delay and per-invoke overhead of each KTE_FLUSH strategy (about 9 minutes).
flushbench: build-host
	go run ./flush/cmd/flushbench -seconds 60

## build-host: the extension for this machine, used by end-to-end tests and the demo.
build-host:
	@mkdir -p build/host
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o build/host/$(NAME) .

## build: static linux binaries for both Lambda architectures.
build:
	@for arch in $(ARCHES); do \
		mkdir -p build/$$arch/extensions; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags "$(LDFLAGS)" -o build/$$arch/extensions/$(NAME) . && \
		chmod 755 build/$$arch/extensions build/$$arch/extensions/$(NAME) || exit 1; \
	done

## layer: one zip per architecture, extensions/<name> at the zip root; prints sizes. Needs zip (Info-ZIP): Go's
## deflate makes 1-2% bigger zips. Fixed timestamps (and -X: no uid/gid or extra times) make the zips reproducible.
layer: build
	@command -v zip >/dev/null || { echo "make layer needs zip (Debian: apt-get install zip)" >&2; exit 1; }
	@for arch in $(ARCHES); do \
		rm -f build/$(NAME)-$$arch.zip; \
		touch -d 1980-01-01T00:00:00Z build/$$arch/extensions build/$$arch/extensions/$(NAME); \
		(cd build/$$arch && TZ=UTC zip -q -X -r ../$(NAME)-$$arch.zip extensions); \
		printf '%s\t%s bytes\n' build/$(NAME)-$$arch.zip $$(stat -c %s build/$(NAME)-$$arch.zip); \
	done

## demo: the extension inside the local Lambda simulator, shipping to kinesalite, with a summary.
demo: deps build-host
	go run ./cmd/kte-demo -extension build/host/$(NAME)

clean:
	rm -rf build cdk/cdk.out
