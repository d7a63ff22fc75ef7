# mammosynth: two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mammosynth-installed
DEMO_OUT ?= demo_out

.PHONY: env demo test bench clean chromium

env: $(STAMP)

# torch is pinned to the CPU build shipped on this machine's disk (a bare `torch`
# pulls a multi-GB CUDA build). pyradiomics (for frd-score) must be built without
# build isolation after numpy and versioneer are present. The install holds a lock
# (flock, where present) so that `make demo` and `make test` started side by side on a
# fresh machine do not build the same environment twice at once; the second one waits
# and then finds it done.
LOCK := $(shell command -v flock >/dev/null 2>&1 && echo flock $(VENV).lock)

$(STAMP): pyproject.toml
	@echo "mammosynth: setting up $(VENV): torch (CPU build), pyradiomics, mammosynth and its extras"
	@$(LOCK) sh -ec '\
	  if test -f $(STAMP) && test $(STAMP) -nt pyproject.toml; then exit 0; fi; \
	  test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install -q --upgrade pip; \
	  $(BIN)/python -m pip install -q torch==2.13.0; \
	  $(BIN)/python -m pip install -q numpy versioneer; \
	  $(BIN)/python -m pip install -q --no-build-isolation pyradiomics; \
	  $(BIN)/python -m pip install -q -e ".[metrics,dicom,dist,c2pa,reader,test]"; \
	  touch $(STAMP)'

demo: $(STAMP)
	$(BIN)/mammosynth demo --out $(DEMO_OUT)

# The browser tests drive Debian's chromium (Playwright's own browser download is not
# used); `make chromium` installs it when apt-get is available and it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	  echo "mammosynth: could not install chromium; the browser tests will be skipped"

test: $(STAMP) chromium
	MAMMOSYNTH_NO_PROGRESS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VENV).lock $(DEMO_OUT) .pytest_cache build *.egg-info src/*.egg-info
