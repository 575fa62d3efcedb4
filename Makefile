# Two entry points for a fresh Debian/Ubuntu machine, as root:
#   make demo   install everything, then run the bundled opensnoop for a few seconds
#   make test   install everything, then run the whole test suite (kernel tests included)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := clang llvm libbpf-dev bpftool iproute2 gcc make git python3-venv systemtap-sdt-dev
DEMO_SECONDS ?= 5

.PHONY: setup system-deps venv kernel-fs demo test unit lint bench packages check-packages clean

setup: system-deps venv kernel-fs

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(BIN)/ecli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/ecli

# tracefs (tracepoints, bpf_printk) and bpffs (pinning) must be mounted
kernel-fs:
	@mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

demo: setup
	@echo "== ecli run opensnoop for $(DEMO_SECONDS) s (files opened meanwhile are shown) =="
	@( for i in 1 2 3 4 5 6 7 8; do sleep 0.5; cat /etc/hostname /etc/os-release >/dev/null; done ) &
	$(BIN)/ecli run --duration $(DEMO_SECONDS) opensnoop

test: setup
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/throughput.py

packages: venv
	$(BIN)/python scripts/rebuild-packages

check-packages: venv
	$(BIN)/python scripts/rebuild-packages --check

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache
