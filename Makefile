# The two commands of the README. Both first create or refresh .venv (tools/bootstrap.sh, idempotent).
PY := .venv/bin/python

.PHONY: env test main

env:
	@tools/bootstrap.sh

## make test: the whole test suite (slow tests included; `make test PYTEST_ARGS='-m "not slow"'` skips them)
test: env
	$(PY) -m pytest $(PYTEST_ARGS)

## make main: the main job (until the demo lands: build the LLP-multi split offline)
main: env
	.venv/bin/macs-bench datasets build llp-multi --out runs/llp-multi
