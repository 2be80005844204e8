# trustvis — the two user-facing targets each do the whole set-up first:
#   make demo   set up, then `trustvis demo`: two detectors on unseen generators, scored photos, report.html
#               (about 6 min on 2 CPU cores after set-up)
#   make test   set up, then run the test suite (a few minutes)
#   make bench-detect   the quick detection benchmark (SynthBench quick; 40 min to 2.5 hours on 2 CPU cores)
#   make bench-detect-v2   the same on SynthBench v2: 3 seeds, clean and laundered test sets (about an hour)
#   make bench-augment / bench-calibrate / bench-adapt   classification, calibration, adaptation (--quick; < 30 min each)
#   make bench-antispoof   mToFNet and four baselines on RecaptureBench, unseen and seen displays (--quick; < 30 min)
#   make bench-reid / bench-active   rolling-back fine-tuning; VaB-AL and five query strategies (--quick; < 30 min)
#   make bench-vit   AAL vs plain ViT and DeiT distillation on small data (--quick; < 30 min)
#   make bench-multimodal   image <-> speech from few pairs: cross-modal VAE vs JMVAE and a latent regressor (--quick)
# A second run skips set-up work already done (stamp file in the venv).

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-setup
PYTEST_ARGS ?=

.PHONY: demo test setup lint format test-slow bench-detect bench-detect-v2 bench-full bench-augment bench-calibrate bench-adapt bench-anomaly bench-antispoof bench-reid bench-active bench-vit bench-multimodal bench-codec bench-codec-ablation clean

demo: setup
	$(VENV)/bin/trustvis demo

bench-detect: setup
	$(VENV)/bin/trustvis data status
	$(VENV)/bin/trustvis bench detect --quick

bench-detect-v2: setup
	$(VENV)/bin/trustvis bench detect --quick --data-version v2

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh "$(VENV)"
	@touch $@

lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

format: setup
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench-augment: setup
	$(VENV)/bin/trustvis bench augment --quick

bench-calibrate: setup
	$(VENV)/bin/trustvis bench calibrate --quick

bench-adapt: setup
	$(VENV)/bin/trustvis bench adapt --quick

bench-anomaly: setup
	$(VENV)/bin/trustvis bench anomaly --quick

bench-antispoof: setup
	$(VENV)/bin/trustvis bench antispoof --quick

bench-reid: setup
	$(VENV)/bin/trustvis bench reid --quick

bench-active: setup
	$(VENV)/bin/trustvis bench active --quick

bench-vit: setup
	$(VENV)/bin/trustvis bench vit --quick

bench-multimodal: setup
	$(VENV)/bin/trustvis bench multimodal --quick

bench-codec: setup
	$(VENV)/bin/trustvis bench codec --quick

# EQLINR leave-one-out ablation; reuses results/codec-quick's points (after bench-codec: about 80 min more)
bench-codec-ablation: setup
	$(VENV)/bin/trustvis bench codec --quick --ablation

bench-full: setup
	$(VENV)/bin/trustvis bench detect

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
