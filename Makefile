# covsde — set-up and entry points.  Every target creates .venv if missing and installs into it.
# torch: the CPU build (torch==2.13.0) is installed first on a machine without an NVIDIA GPU, so
# that pip never pulls the multi-GB CUDA build there.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.covsde-installed

.PHONY: demo test test-other-isa bench install clean docs docs-figures

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "GPU found: installing torch with CUDA support"; $(BIN)/pip install -q "torch>=2.1"; \
	else \
	  echo "no GPU: installing the CPU build torch==2.13.0"; $(BIN)/pip install -q "torch==2.13.0"; \
	fi
	$(BIN)/pip install -q -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/covsde demo --out demo-out --force

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=12 tests

# The tests that compare with results stored in tests/ (marker `golden`), again with every numeric library
# on AVX2 kernels (Numba for Haswell, without the AVX-512 features it would otherwise take from this CPU;
# OpenBLAS Haswell kernels; torch's AVX2 dispatch; MKL, where present, AVX2), each cache folder its own:
# the stored results hold on a CPU with another SIMD width, not only on the one that wrote them.
HASWELL := NUMBA_CPU_NAME=haswell \
  NUMBA_CPU_FEATURES=+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fsgsbase,+lzcnt,+mmx,+movbe,+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt \
  OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
  NUMBA_CACHE_DIR=$(CURDIR)/.ci-cache/numba-haswell COVSDE_CACHE_DIR=$(CURDIR)/.ci-cache/covsde-haswell

test-other-isa: $(STAMP)
	$(HASWELL) $(BIN)/python -m pytest -q -n 2 -m golden -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/bench_derive.py
	$(BIN)/python benchmarks/bench_integrator.py
	$(BIN)/python benchmarks/bench_validate.py

# the docs site: installs the docs extra, builds into site/ with warnings as errors
DOCS_STAMP := $(VENV)/.covsde-docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# the pictures on the docs pages (committed; the --quick sizes, a few minutes on 2 cores)
FIGURES := rank-collapse mlp-density transformer-density explosion tau-sweep gamma-sweep
docs-figures: $(STAMP)
	for f in $(FIGURES); do $(BIN)/covsde reproduce $$f --quick --out docs/figures --force || exit 1; done
	$(BIN)/covsde phase resnet --x q=0:1 --y p=0:1 --steps 9 --out docs/figures --force

clean:
	rm -rf $(VENV) demo-out .pytest_cache site
