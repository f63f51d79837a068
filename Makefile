# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make run    install into .venv and run the main job: the fastest recipe, resumable (Ctrl-C, then make run again)
#   make test   install into .venv (with the dev tools), lint with ruff (pyproject.toml), find chromium + chromedriver for the docs tests (as root
#               with apt-get, install them; otherwise those tests skip and print the command to run), then run
#               every test: the unit tests, every notebook top to bottom as JupyterLab's Run All (in a scratch
#               copy, 3 minutes at most each), the hygiene checks and the docs site in a browser
#   make docs   build the documentation site into docs/_build/html/ (Sphinx + MyST-NB; notebooks are not executed)
# Point the project at an existing CIFAR-10 copy with RESNET_FAST_DATA=/path/to/cifar10 (see README).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

$(STAMP): settings.ini setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,ray]'
	touch $@

.PHONY: install run test export docs browser
install: $(STAMP)

# The main job: the fastest recipe, once. Its record goes to runs/fastest_N.json, never over an earlier one; a checkpoint
# runs/fastest_N.ckpt is saved after every epoch, so an interrupted run (Ctrl-C) resumes where it stopped at the next
# `make run`, and is removed once the record is written.
# The part-4 ResNet-9 (hours on a CPU): .venv/bin/resnet-fast train --recipe resnet9 --checkpoint runs/resnet9.ckpt
run: $(STAMP)
	@mkdir -p runs; n=1; while [ -e runs/fastest_$$n.json ]; do n=$$((n + 1)); done; \
	if [ -e runs/fastest_$$n.ckpt ]; then echo "make run: resuming the interrupted run runs/fastest_$$n.ckpt"; fi; \
	$(VENV)/bin/resnet-fast train --recipe fastest --checkpoint runs/fastest_$$n.ckpt --out runs/fastest_$$n.json \
	&& rm -f runs/fastest_$$n.ckpt

test: $(STAMP) browser
	$(VENV)/bin/ruff check
	$(VENV)/bin/python -m pytest -q tests

# The docs tests drive chromium through chromedriver. Found on PATH: nothing to do. Missing, as root with apt-get:
# install Debian's packages. Otherwise (or if that fails) the browser tests skip, saying what to run.
BROWSER_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
browser:
	@if { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1 \
	    && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo 'make: installing chromium and chromedriver for the docs tests: $(BROWSER_INSTALL)'; \
	    ( $(BROWSER_INSTALL) ) || echo 'make: could not install chromium/chromedriver: the browser tests will skip'; \
	else \
	    echo 'make: chromium/chromedriver not found: the browser tests will skip. To run them:'; \
	    echo '      sudo apt-get update && sudo apt-get install -y chromium chromium-driver'; \
	fi

export: $(STAMP)
	$(VENV)/bin/nbdev_export && $(VENV)/bin/nbdev_clean && $(VENV)/bin/python tools/kernel_metadata.py && $(VENV)/bin/python tools/make_readme.py

docs: $(STAMP)
	$(VENV)/bin/python tools/build_docs.py --out docs/_build/html
