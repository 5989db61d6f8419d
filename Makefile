# oes — developer entry points. `make` lists the targets.
#
# Local services (Redis, a one-node Redis Cluster, moto_server) come from scripts/services.sh;
# their addresses and the fake AWS credentials come from `scripts/services.sh env`, so ports are
# set in one place (OES_REDIS_PORT, OES_REDIS_CLUSTER_PORT, OES_AWS_PORT).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SERVICES := scripts/services.sh
VENV     := .venv
PREFIX   := oes-local
# Prefix a command with $(WITH_ENV) to run it against the local services.
WITH_ENV := eval "$$($(SERVICES) env)" &&

.PHONY: help services services-down build test fuzz-api load-smoke openapi soak template-check lint run-local provision bench bench-cold-start bench-http package deploy-tools

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

services: ## start Redis, a one-node Redis Cluster and moto on loopback (installs what is missing; idempotent)
	@$(SERVICES) up

services-down: ## stop the services this repo started
	@$(SERVICES) down

build: ## build every crate and target
	cargo build --workspace --all-targets

test: services ## check formatting, build, run all tests against the local services, fuzz the API, a short exam day, lint the template and the code
	@# rustfmt and clippy come with rustup's default profile; a minimal one lacks them.
	@if command -v rustup >/dev/null; then rustup component add rustfmt clippy 2>&1 | grep -v 'is up to date' || true; fi
	cargo fmt --all -- --check
	cargo build --workspace --all-targets
	$(WITH_ENV) cargo test --workspace
	scripts/fuzz-api.sh
	scripts/load-smoke.sh
	@$(MAKE) --no-print-directory template-check
	cargo clippy --workspace --all-targets -- -D warnings

fuzz-api: ## schemathesis against oes-local (embedded) as each role (FUZZ_SEED, FUZZ_EXAMPLES)
	cargo build -p oes-local
	scripts/fuzz-api.sh

load-smoke: ## a short exam day (30 students) against oes-local (embedded) with oes-load's hard checks
	cargo build -p oes-local -p oes-load
	scripts/load-smoke.sh

openapi: ## write docs/openapi.json again from the code
	@# Through a temporary file: a build that fails leaves the document as it was.
	cargo run -q -p oes-local -- --openapi > docs/openapi.json.tmp || { rm -f docs/openapi.json.tmp; exit 1; }
	mv docs/openapi.json.tmp docs/openapi.json

soak: ## run the pipeline's fault simulation over 100,000 seeds (make test runs 2,000); SEEDS=n FROM=s to change
	cargo build -p oes-sim
	./target/debug/oes-sim --seeds $${SEEDS:-100000} --from $${FROM:-0}

template-check: ## cfn-lint template.yaml (+ sam validate --lint when SAM CLI is installed)
	@test -x $(VENV)/bin/cfn-lint || { echo "no $(VENV)/bin/cfn-lint: run 'make services' first" >&2; exit 1; }
	$(VENV)/bin/cfn-lint template.yaml
	@if [ -x $(VENV)/bin/sam ]; then \
	  echo "$(VENV)/bin/sam validate --lint"; \
	  SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --region us-east-1; \
	fi

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

provision: ## create the local tables and queues (prefix oes-local) in moto
	$(WITH_ENV) cargo run -p oesctl -- provision --endpoint "$$AWS_ENDPOINT_URL" --prefix $(PREFIX)

run-local: services ## provision, then run the local gateway against Redis and moto
	$(WITH_ENV) cargo run -p oesctl -- provision --endpoint "$$AWS_ENDPOINT_URL" --prefix $(PREFIX)
	$(WITH_ENV) OES_PREFIX=$(PREFIX) cargo run -p oes-local

bench: services ## run the benchmarks behind docs/BENCHMARKS.md against the local services
	cargo build --profile bench -p oes-bench
	$(WITH_ENV) ./target/release/oes-bench worker >/dev/null
	$(WITH_ENV) OES_METRICS=emf ./target/release/oes-bench worker >/dev/null
	$(WITH_ENV) OES_METRICS=emf ./target/release/oes-bench worker --emails 3000 --dynamo-ledger >/dev/null
	$(WITH_ENV) ./target/release/oes-bench enqueue >/dev/null
	$(WITH_ENV) ./target/release/oes-bench cache >/dev/null
	$(WITH_ENV) ./target/release/oes-bench rate-limit >/dev/null
	OES_METRICS=emf ./target/release/oes-bench emf >/dev/null

# Each binary built as `sam build` builds a function: cargo-lambda (Zig, its target CPU) in the
# binary's own crate, one binary per build, for this machine's architecture (the functions deploy
# for arm64; BENCHMARKS, "Cold starts"). `services` installs cargo-lambda. crate:binary pairs.
COLD_START_BINARIES := oes-bench:hello-lambda oes-bench:hello-lambda-current-thread \
  auth-api:auth-api exam-api:exam-api exam-api:attempt-sweeper admin-api:admin-api \
  email-worker:email-worker

bench-cold-start: services ## cold starts of the functions built as they deploy, beside a hello-world lambda_http binary (AGAINST=DIR: beside another build too)
	cargo build --release -p oes-bench
	for pair in $(COLD_START_BINARIES); do \
	  PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --release -p $${pair%%:*} \
	    --bin $${pair##*:} --target $$(uname -m)-unknown-linux-gnu --lambda-dir target/cold-start \
	    || exit 1; \
	done
	$(WITH_ENV) ./target/release/oes-bench cold-start --runs $${RUNS:-300} --binaries target/cold-start \
	  $(if $(AGAINST),--against $(AGAINST))

bench-http: ## the hot read path over HTTP with wrk: oes-local (release, real mode) beside Express + node-redis and a bare hyper floor, one core each
	cargo build --release -p oes-local -p oesctl
	cargo build --release -p floor-http
	scripts/bench-http.sh

package: ## build the arm64 bootstrap.zip of each function with cargo-lambda and report sizes
	scripts/package.sh

deploy-tools: ## install what sam build needs: sam, cargo-lambda and Zig into .venv, the aarch64 target
	scripts/package.sh --tools
