# One entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PERF_VENV := perf/.venv
REPO := model_repository
MANIFEST ?= build/export/manifest.json
CHECKPOINTS ?=
VISUAL_MODEL ?=
FAKE_LABEL ?=
AUDIO_MODEL ?=
AUDIO_FAKE_LABEL ?=
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002
PYTEST_ARGS ?=
DETECTOR ?=
DATA ?=
LAYOUT ?= folder
OUT ?= checkpoints
TRAIN_ARGS ?=

.PHONY: help venv perf-venv export exported serve train speech-set-deps test lint unit clean perf-tools perf

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# The venv is rebuilt when the pins change. torch==2.13.0 is the CPU build;
# nvidia-pytriton (the Triton server binary) and facenet-pytorch (MTCNN's
# weights) are installed without their Python deps, which are not needed and
# would conflict: facenet-pytorch 2.6.0 pins torch<2.3 and torchvision<0.18,
# and torchvision does not import next to the CPU torch build.
$(VENV)/.installed: pyproject.toml contract/pyproject.toml client/pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e ./contract -e ".[export,train,test]" -e "./client[eval]"
	$(PY) -m pip install --quiet --no-deps -c constraints.txt nvidia-pytriton facenet-pytorch
	touch $@

venv: $(VENV)/.installed  ## create .venv with the pinned dependencies

# Locust cannot share .venv with tritonclient[http] (see perf/requirements.txt).
$(PERF_VENV)/.installed: perf/requirements.txt perf/constraints.txt
	$(PYTHON) -m venv $(PERF_VENV)
	$(PERF_VENV)/bin/python -m pip install --quiet -c perf/constraints.txt -r perf/requirements.txt
	touch $@

perf-venv: $(PERF_VENV)/.installed  ## create perf/.venv with Locust

# The exporter skips networks whose code and weights did not change.
# QUANTIZE=int8 serves the INT8 CPU profiles.
export: venv  ## export the networks to ONNX (CHECKPOINTS=dir, VISUAL_MODEL / AUDIO_MODEL=hub id or folder, QUANTIZE=int8)
	$(PY) -m deepfake_export --repository $(REPO) --manifest $(MANIFEST) $(if $(CHECKPOINTS),--checkpoints $(CHECKPOINTS)) \
		$(if $(VISUAL_MODEL),--visual-model $(VISUAL_MODEL)) $(if $(FAKE_LABEL),--fake-label $(FAKE_LABEL)) \
		$(if $(AUDIO_MODEL),--audio-model $(AUDIO_MODEL)) $(if $(AUDIO_FAKE_LABEL),--audio-fake-label $(AUDIO_FAKE_LABEL)) \
		$(if $(QUANTIZE),--quantize $(QUANTIZE))

# serve and train keep what the last export built (trained, pretrained or INT8 networks): they
# export first only when a source is named on their command line or nothing is exported yet;
# otherwise they refuse an export the current code would build differently, naming the
# `make export` variables that rebuild it.
PREPARE := $(if $(CHECKPOINTS)$(VISUAL_MODEL)$(AUDIO_MODEL)$(QUANTIZE)$(if $(wildcard $(MANIFEST)),,none),export,exported)

exported: venv
	$(PY) -m deepfake_export --repository $(REPO) --manifest $(MANIFEST) --check

serve: $(PREPARE)  ## run Triton in the foreground on the last export (exports first if none, or with CHECKPOINTS/VISUAL_MODEL/AUDIO_MODEL/QUANTIZE)
	$(PY) -m deepfake_serving.server --model-repository $(REPO) \
		--http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

# Faces are cropped by the exported MTCNN, so training needs the export first.
train: $(PREPARE)  ## train a detector: DETECTOR=visual|forensic|audio|temporal DATA=dir [LAYOUT=folder OUT=checkpoints TRAIN_ARGS=...]
	@test -n "$(DETECTOR)" -a -n "$(DATA)" || { echo "usage: make train DETECTOR=audio DATA=/path/to/dataset [LAYOUT=folder] [OUT=checkpoints]"; exit 2; }
	$(PY) -m deepfake_train $(DETECTOR) --data $(DATA) --layout $(LAYOUT) --out $(OUT) --repository $(REPO) $(TRAIN_ARGS)

# Real speech and a synthesizer for the training test's dataset (deepfake_train.speech_set).
speech-set-deps:  ## install the Debian packages the speech dataset is built from
	@test -d /usr/share/pocketsphinx/test/data -a -f /usr/share/sounds/alsa/Front_Center.wav && command -v espeak-ng >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends pocketsphinx-testdata alsa-utils espeak-ng; }

test: export perf-venv speech-set-deps  ## set up and run the whole test suite against a real server on free ports
	$(PY) -m pytest $(PYTEST_ARGS)

unit: venv  ## only the tests that need no server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv  ## ruff: lint rules and formatting (`ruff format` fixes the latter)
	$(VENV)/bin/ruff check contract src export train tests client perf deploy model_repository
	$(VENV)/bin/ruff format --check contract src export train tests client perf deploy model_repository

# perf_analyzer (shipped in the tritonclient 2.51 wheel) loads libb64.so.0d
# (Debian libb64-0d) and libcudart.so.12 (PyPI nvidia-cuda-runtime-cu12), even on CPU.
perf-tools: venv  ## install what perf_analyzer needs
	@ldconfig -p | grep -q libb64.so.0d || { apt-get update -qq && apt-get install -y -qq libb64-0d; }
	$(PY) -m pip install --quiet -c constraints.txt -e ".[perf]"

perf: export perf-tools  ## the benchmark suite into perf/results/<date> (about 15 min; QUICK=1: 4 min)
	$(PY) -m perf.suite $(if $(QUICK),--quick)

clean:  ## remove generated artifacts (keeps .venv)
	rm -rf build $(REPO)/*/1/*.onnx
