# berth: the two set-up commands are `make run` and `make test`.
CARGO    ?= cargo
DATA_DIR ?= .berth
LISTEN   ?= 127.0.0.1:7443
ARGS     ?=

.PHONY: run test deps docker lint crds bench

## run: build berth and serve on the embedded store under $(DATA_DIR), against the local Docker
run: deps docker
	$(CARGO) build --release --bin berth
	./target/release/berth serve --data-dir $(DATA_DIR) --listen $(LISTEN) $(ARGS)

## test: lint, install what the tests need if missing, then run every test
test: deps docker lint
	$(CARGO) test --workspace --no-fail-fast

## deps: install build and test prerequisites (idempotent)
deps:
	@scripts/install-test-deps.sh

## docker: fail in one clear line when no Docker daemon answers
docker:
	@scripts/check-docker.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## crds: regenerate crds/*.yaml from the Rust types
crds:
	$(CARGO) run -q --bin berth -- crds --dir crds

## bench: performance figures against baselines measured in the same run (docs/performance.md);
## tables on stdout, JSON in target/bench/. Fails only when a run breaks, never on a missed target.
BENCHES = --bench store_throughput --bench api --bench runtime --bench docker
bench: docker
	@t0=$$(date +%s); \
	scripts/install-test-deps.sh bench && $(CARGO) bench --no-run $(BENCHES) || exit 1; \
	t1=$$(date +%s); $(CARGO) bench $(BENCHES); rc=$$?; t2=$$(date +%s); \
	echo "make bench: $$((t1 - t0)) s installing and building, $$((t2 - t1)) s measuring, $$((t2 - t0)) s in all"; \
	exit $$rc
