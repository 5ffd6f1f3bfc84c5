# liveclass: `make run` to try it, `make test` to check it.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test lint bench generate check-generate clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/liveclass ./cmd/liveclass

# Serve on http://localhost:8080 with demo users and classes; data in ./data.
run: build
	./bin/liveclass serve --demo

# Installs PostgreSQL, Chromium and ffmpeg when missing, then runs every test.
# One package at a time (-p 1): the browser and media tests are real-time
# (three Chromiums and Pion peers sending live video), and on two cores a
# second package's tests running beside them starve them of CPU.
test:
	./scripts/install-test-deps.sh
	$(GO) test -race -count=1 -p 1 ./...

lint: check-generate
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

generate:
	$(GO) generate ./...

# Regenerating the GraphQL code must change nothing: the committed code is
# what the schema says.
check-generate:
	$(GO) generate ./internal/graph
	@git diff --exit-code -- internal/graph || { echo "internal/graph is stale: run make generate and commit"; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- internal/graph)"; \
	if [ -n "$$untracked" ]; then echo "make generate made new files:"; echo "$$untracked"; exit 1; fi

clean:
	rm -rf bin
