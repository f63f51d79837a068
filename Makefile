# Two commands do all set-up on a fresh machine with Python 3.11:
#   make run    install into .venv and run the main job (the part-4 ResNet-9 recipe, one training run)
#   make test   install into .venv (with the dev tools) and run every test
#   make docs   build the documentation site into docs/_build/html/ (Sphinx + MyST-NB; notebooks are not executed)
# Point the project at an existing CIFAR-10 copy with RESNET_FAST_DATA=/path/to/cifar10 (see README).
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

$(STAMP): settings.ini setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

.PHONY: install run test export docs
install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/resnet-fast train --model resnet9 --checkpoint results/resnet9_recipe.ckpt \
		--out results/resnet9_recipe_$$(date +%Y%m%d-%H%M%S).json

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

export: $(STAMP)
	$(VENV)/bin/nbdev_export && $(VENV)/bin/python tools/make_readme.py

docs: $(STAMP)
	$(VENV)/bin/python tools/build_docs.py --out docs/_build/html
