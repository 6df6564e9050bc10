# Parley — see README.md.
.PHONY: run test bench import-chitchat fmt lint

run: ## install what is missing, start NATS + Postgres + the three services
	bash deploy/run.sh

test: ## install what is missing, start throwaway NATS + Postgres, run every test
	bash deploy/test.sh

bench: ## release build; S1/S3/S4/S5 each beside its in-run baseline (BENCHMARKS.md)
	bash deploy/bench.sh

import-chitchat: ## send the chitchat corpus through the API and verify it
	bash deploy/import.sh

fmt:
	cargo fmt --all

lint: ## rustfmt --check, clippy (warnings are errors), unused dependencies (cargo-machete)
	bash deploy/lint.sh
