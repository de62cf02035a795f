# Two commands on a fresh machine: `make run` (set up, start the app — demo mode without credentials)
# and `make test` (set up, run every test; installs Debian's chromium and gnome-keyring for the browser and
# keyring tests when missing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup webhooks bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/feedback-hub app

webhooks: $(STAMP)
	$(BIN)/python -m feedback_sources serve-webhooks

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ echo "Installing Debian's chromium for the browser tests"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		  echo "chromium could not be installed: the browser tests will be skipped"; }
	@command -v gnome-keyring-daemon >/dev/null 2>&1 && command -v dbus-daemon >/dev/null 2>&1 || \
		{ echo "Installing Debian's gnome-keyring and dbus for the Secret Service keyring test"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnome-keyring dbus dbus-x11 \
		   >/dev/null) || \
		  echo "gnome-keyring could not be installed: the Secret Service keyring test will be skipped"; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
