# The two commands of the README. Both first create or refresh the venv (tools/bootstrap.sh, idempotent).
VENV ?= $(or $(MACS_VENV),.venv)
export MACS_VENV := $(VENV)

.PHONY: env test main

env:
	@tools/bootstrap.sh

## make test: the whole test suite (slow tests included; `make test PYTEST_ARGS='-m "not slow"'` skips them)
test: env
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## make main: the main job, the offline end-to-end demo into runs/demo (synthetic world, shipped world models; no GPU,
## weights or network needed)
main: env
	$(VENV)/bin/macs-model demo --out runs/demo
