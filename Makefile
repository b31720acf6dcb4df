# The two commands of the README:
#   make test              install what is missing, run the test suite (CI runs this)
#   make book              install what is missing, execute every chapter whose inputs changed, build the HTML book
#                          (runs missing from the cache come from the trace bundle traces/PROFILE when it exists)
#   make traces            execute every chapter and export the runs they use to traces/PROFILE (hours; resumable;
#                          runs of the existing bundle are reused, verified, with their provenance)
# Both execute JOBS chapters at once (default 2), each in a single-threaded process.
# Options: make book PROFILE=smoke|default|digits|paper  CACHE=dir  BUNDLE=dirs  JOBS=n  PYTHON=python3.11
PYTHON ?= python3
PROFILE ?= default
CACHE ?= $(CURDIR)/.cache/regutils
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1
JOBS ?= 2
BUNDLE ?= $(if $(wildcard traces/$(PROFILE)/manifest.json),$(CURDIR)/traces/$(PROFILE))

.PHONY: test book traces bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[book,test,lightning,huggingface]"
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	touch $@

test: $(VENV)/.installed chromium
	$(BIN)/python -m pytest -q

# The book test opens the pages in Debian's Chromium; install it where it is missing and apt can.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "chromium not installed: the browser test will be skipped"

book: $(VENV)/.installed
	REGUTILS_CACHE=$(CACHE) REGUTILS_BUNDLE=$(BUNDLE) $(BIN)/python -m regutils book --profile $(PROFILE) --jobs $(JOBS)

traces: $(VENV)/.installed
	REGUTILS_CACHE=$(CACHE) REGUTILS_BUNDLE=$(BUNDLE) $(BIN)/python -m regutils traces --profile $(PROFILE) --jobs $(JOBS)
	$(BIN)/python -m regutils bundle verify traces/$(PROFILE)

bench: $(VENV)/.installed
	$(BIN)/python bench/tracking_overhead.py
	$(BIN)/python bench/analysis_speed.py

clean:
	rm -rf _build book/*.ipynb book/generated
