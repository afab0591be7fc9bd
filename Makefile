# The README's two commands: `make book` (build the HTML book) and `make test` (run the tests).
# Both create .venv and install into it on first use (`make book` only what the book needs: no
# torch); nothing needs a GPU or a network beyond the package index.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
# torch/torchvision: the pair that this project's machines hold on disk; override for others.
TORCH_SPEC  ?= torch==2.14.1 torchvision==0.29.1
# The offline copies of the data sets (shared/data beside the checkout).
SHARED_DATA ?= $(firstword $(wildcard ../shared/data /work/shared/data))
QUIDE_DATA  ?= $(CURDIR)/data/cache
export QUIDE_DATA

.PHONY: venv book-venv data browser fashion-mnist test test-fast book book-pages clean smoke-notebook reproduce rerun
.DEFAULT_GOAL := book

# Two stamps in one .venv: the book needs only the analysis layer (numpy, pandas, matplotlib, SciPy)
# and jupyter-book, no torch; the tests need everything, torch included.
$(VENV)/.book-installed: pyproject.toml
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(PY) -m pip install -q --upgrade pip && \
	$(PY) -m pip install -q -e '.[book]' && \
	echo "book environment installed in $$(( $$(date +%s) - start )) s"
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[measure,test,book,llm]'
	touch $@

venv: $(VENV)/.installed
book-venv: $(VENV)/.book-installed

# Data caches for tests: exact MNIST, and the CIFAR-10 JPEG stand-in decoded into the npz layout.
data: $(VENV)/.installed
ifneq ($(SHARED_DATA),)
	mkdir -p $(QUIDE_DATA)
	cd $(SHARED_DATA) && sha256sum --quiet -c SHA256SUMS
	[ -f $(QUIDE_DATA)/mnist.npz ] || cp $(SHARED_DATA)/mnist.npz $(QUIDE_DATA)/mnist.npz
	[ -f $(QUIDE_DATA)/mmlu_dev_test.jsonl.gz ] || cp $(SHARED_DATA)/mmlu_dev_test.jsonl.gz $(QUIDE_DATA)/
	[ -f $(QUIDE_DATA)/cifar10.npz ] || $(PY) $(SHARED_DATA)/prepare_cifar10_jpeg.py \
		$(SHARED_DATA)/cifar10_jpeg_q75_yoongikim.tar.xz $(QUIDE_DATA)/cifar10.npz
else
	@echo "shared/data not found: tests that need MNIST or CIFAR-10 will be skipped (set SHARED_DATA)"
endif

# A Debian package, quietly; the package lists are updated only when the first try fails.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
apt_install = $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || \
	{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(1) >/dev/null; }

# Headless Chromium for the book's browser test (Debian package `chromium`).
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || $(call apt_install,chromium)

# Fashion-MNIST's Debian files (package dataset-fashion-mnist), which its loader's tests read.
fashion-mnist:
	@[ -d /usr/share/datasets/fashion-mnist ] || $(call apt_install,dataset-fashion-mnist)

# Tests run in TEST_WORKERS processes (pytest-xdist), a whole file per process: a file's tests share
# its fixtures (one book build, one trained model) and a notebook's cells run in order. Two fit the
# 2-core CI machine; TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# `make test`: pytest (tests/), then the book's summary notebooks under nbval, strictly: re-executed from the committed records and compared
# with their committed outputs (a record changed without `make book-pages` fails here). The book
# build in tests/test_book_html.py renders those committed outputs, so each page executes once.
test: data browser fashion-mnist
	QUIDE_REQUIRE_DATA=$(if $(SHARED_DATA),1,0) QUIDE_REQUIRE_BROWSER=1 $(PY) -m pytest $(XDIST)
	$(PY) -m pytest $(XDIST) -o addopts="" -p no:cacheprovider -q -rfE --nbval --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg book/*.ipynb

# The development tier: every test but those marked slow (over a few seconds: subprocess runs,
# training, the book build, notebooks under nbval), so no browser and no book page; `make test` runs all.
test-fast: data fashion-mnist
	QUIDE_REQUIRE_DATA=$(if $(SHARED_DATA),1,0) $(PY) -m pytest $(XDIST) -m "not slow"

book: book-venv
	@start=$$(date +%s); \
	$(VENV)/bin/jupyter-book clean . >/dev/null && \
	$(VENV)/bin/jupyter-book build . -W -n --keep-going; status=$$?; \
	echo "book built in $$(( $$(date +%s) - start )) s"; exit $$status
	@echo "open _build/html/index.html"

# Re-execute the book's summary notebooks from their MyST sources book/src/*.md (paired by jupytext,
# book/jupytext.toml) after records or pages change: inputs from the source, then run in book/ as
# nbval runs them.
book-pages: book-venv
	for src in book/src/*.md; do page=book/$$(basename $$src .md).ipynb; \
		$(VENV)/bin/jupytext --quiet --update --to ipynb --output $$page $$src && \
		$(VENV)/bin/jupyter-execute --inplace --timeout=300 --kernel_name=python3 $$page || exit 1; \
	done

clean:
	rm -rf _build .pytest_cache .hypothesis

# The executed smoke copy that nbval re-runs in `make test`; regenerate after editing the notebook.
# notebooks/<name>.py is the source (jupytext percent script); --sync writes its cells into the .ipynb.
tests/notebooks/ptq_sweep_smoke.ipynb: notebooks/ptq_sweep.ipynb notebooks/ptq_sweep.py
	$(VENV)/bin/jupytext --quiet --sync notebooks/ptq_sweep.py
	QUIDE_RESULTS=$$(mktemp -d) QUIDE_CHECKPOINTS=$$(mktemp -d) $(VENV)/bin/papermill -k python3 \
		$< $@ -p profile smoke -p device cpu -p dataset mnist

smoke-notebook: tests/notebooks/ptq_sweep_smoke.ipynb

# A grid of notebook runs (quide reproduce): finished runs are skipped by content key. For a GPU
# grid, CONFIG=reproduce/paper.toml; WORKERS empty = one worker per visible GPU.
CONFIG  ?= reproduce/smoke.toml
WORKERS ?=
reproduce: data
	$(PY) -m quide reproduce $(CONFIG) $(if $(WORKERS),--workers $(WORKERS))

# Rerun one notebook (papermill) after `make book` on a fresh clone: installs what measuring needs,
# fills the data cache from shared/data, then runs NOTEBOOK with PARAMS. A smoke run (the default:
# CPU, a few minutes) writes its records into a temporary folder; set QUIDE_RESULTS to keep them.
NOTEBOOK ?= notebooks/ptq_sweep.ipynb
PARAMS   ?= -p profile smoke -p device cpu -p dataset cifar10
RERUN_OUT ?= _build/rerun/$(notdir $(NOTEBOOK))
rerun: data
	mkdir -p $(dir $(RERUN_OUT))
	$(VENV)/bin/papermill -k python3 --cwd $(CURDIR) $(NOTEBOOK) $(RERUN_OUT) $(PARAMS)
	@echo "executed notebook: $(RERUN_OUT)"
