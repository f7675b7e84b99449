# opsbot: `make run` starts the local stack, `make test` runs everything CI runs. Both set themselves up.
PYTHON ?= python3.12
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam
# The local stack's API port. The stack owns the others: each follows from PORT (local/ports.py: the chat sink PORT+1,
# Drone +2, GitLab +3, Kubernetes +4, SSM +5, Argo CD +6, DNS +53, moto +2005) unless set alone in the environment
# (SINK_PORT, DRONE_PORT, GITLAB_PORT, KUBE_PORT, SSM_PORT, ARGOCD_PORT, DNS_PORT, MOTO_PORT), and the local commands
# ask the running stack.
PORT ?= 3000
CHROMEDRIVER := /usr/bin/chromedriver
export PYTHONDONTWRITEBYTECODE := 1
# The tests run in parallel, one pytest-xdist worker per core (JOBS=1: one worker); each run lists its 15 slowest.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(PY) -m pytest -q -n $(JOBS) --durations=15

.PHONY: help lint lock run send chat click press config config-push freeze-try governance-tick hand-edit drift-check event chat-reference mr-reference config-reference references docs-images golden test unit integration fuzz validate build bench chaos config-validate config-load events clean
.DEFAULT_GOAL := help

## help: this list, which `make` alone prints too
help:
	@echo "usage: make <target> [NAME=value …]   the two you need: make run, make test"
	@awk '/^## [a-z][a-z-]*: / { name = $$2; sub(/:$$/, "", name); sub(/^## [a-z][a-z-]*: /, ""); \
		printf "  %-16s %s\n", name, $$0; next } \
		/^##   / { sub(/^## +/, ""); printf "  %-16s   %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

# The locks are installed with --require-hashes (each on its own: pip checks hashes per invocation); the test
# packages (requirements-dev.txt) are not locked.
$(VENV)/.installed: requirements-dev.txt layers/opsbot/requirements.txt functions/worker/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r layers/opsbot/requirements.txt
	$(PY) -m pip install --quiet --require-hashes -r functions/worker/requirements.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet --require-hashes -r requirements-tools.txt
	touch $@

## run: the local stack on 127.0.0.1:3000 (PORT=…; CONFIG=dir for another config; VERBOSE=1 prints JSON logs):
##   moto, the config, fake DingTalk, Feishu, Drone, GitLab
##   (with the deploy repo), Kubernetes, Argo CD, SSM Run Command and DNS
run: $(VENV)/.installed
	$(PY) -m local.stack --port $(PORT) $(if $(CONFIG),--config "$(CONFIG)") $(if $(VERBOSE),--verbose)

## send: sign and send a sample event to the running stack, e.g. make send EVENT=events/drone/build_failure.json
send: $(VENV)/.installed
	@test -n "$(EVENT)" || (echo "usage: make send EVENT=events/drone/build_failure.json [PORT=3000]" && exit 2)
	$(PY) -m local.send $(EVENT) --port $(PORT)

## chat: talk to the bot on the running stack, e.g. make chat MSG='status shop-api' WHO=alice [CHANNEL=feishu|slack]
##   [WAIT=75: wait up to that many seconds for an act's result, e.g. a release's card after its verification]
chat: $(VENV)/.installed
	@test -n "$(MSG)" || (echo "usage: make chat MSG='status shop-api' [WHO=alice] [CHANNEL=feishu|slack] [PORT=3000]" && exit 2)
	$(PY) -m local.chat "$(MSG)" --as "$(or $(WHO),alice)" --channel "$(or $(CHANNEL),dingtalk)" --port $(PORT) \
		$(if $(WAIT),--wait $(WAIT))

## click: follow a release link from a card as a person, through the fake DingTalk login, e.g.
##   make click LINK=http://127.0.0.1:3000/actions/<token> WHO=alice   (WHO=stranger: not in the config)
click: $(VENV)/.installed
	@test -n "$(LINK)" || (echo "usage: make click LINK=<a release link from a card> [WHO=alice] [PORT=3000]" && exit 2)
	$(PY) -m local.click "$(LINK)" --as "$(or $(WHO),alice)" --port $(PORT)

## press: press a button on opsbot's Slack message as a person (Slack's signed interactivity request), e.g.
##   make press COMMAND='deploy shop-api 128 to staging' WHO=carol, or CARD=last [BUTTON=0]   (WHO=stranger)
press: $(VENV)/.installed
	@test -n "$(COMMAND)$(CARD)" || (echo "usage: make press COMMAND='approve <id>' | CARD=last [BUTTON=0] [WHO=carol] [PORT=3000]" && exit 2)
	$(PY) -m local.press $(if $(COMMAND),--command "$(COMMAND)",--card "$(CARD)") --button $(or $(BUTTON),0) --as "$(or $(WHO),carol)" --port $(PORT)

## config-push: push a file of the config directory to the running stack's config repo and send the Push Hook
config-push: $(VENV)/.installed
	@test -n "$(FILE)" || (echo "usage: make config-push FILE=projects/shop-web.yaml [DIR=the stack's config] [WHO=alice]" && exit 2)
	$(PY) -m local.config_push $(FILE) $(if $(DIR),--config "$(DIR)") --as "$(or $(WHO),alice)" --port $(PORT)

## hand-edit: change the running stack's deploy repo by hand (no opsbot), e.g. make hand-edit [FILE=shop-api/…] [WHO=bob]
hand-edit: $(VENV)/.installed
	$(PY) -m local.deploy_edit $(FILE) --as "$(or $(WHO),bob)" --port $(PORT)

## drift-check: queue the drift check on the running stack now, as the template's schedule does on AWS
drift-check: $(VENV)/.installed
	$(PY) -m local.deploy_edit --check --port $(PORT)

## freeze-try: start a change freeze now on the running stack (a config push), to try one without waiting, e.g.
##   make freeze-try [PROJECT=shop-api] [ENV=production] [MINUTES=30]   (OFF=1: push the project's file back)
freeze-try: $(VENV)/.installed
	$(PY) -m local.freeze_try --project $(or $(PROJECT),shop-api) --env $(or $(ENV),production) \
		--minutes $(or $(MINUTES),30) $(if $(OFF),--off,) --port $(PORT)

## governance-tick: queue release governance's scheduled tick on the running stack now (freeze announcements,
##   weekly reports due), e.g. make governance-tick AT=2026-12-14T02:00:00Z for the report of Monday 10:00
governance-tick: $(VENV)/.installed
	$(PY) -m local.deploy_edit --tick $(or $(AT),now) --port $(PORT)

## chat-reference: regenerate both READMEs' chat command reference from the command registry
chat-reference: $(VENV)/.installed
	PYTHONPATH=layers/opsbot $(PY) -m opsbot.chat.reference --write README.md --write README.zh-CN.md

## mr-reference: regenerate both READMEs' merge-request command reference from the slash-command registry
mr-reference: $(VENV)/.installed
	PYTHONPATH=layers/opsbot $(PY) -m opsbot.review.reference --write README.md --write README.zh-CN.md

## config-reference: regenerate both READMEs' config-keys reference from the config model
config-reference: $(VENV)/.installed
	PYTHONPATH=layers/opsbot $(PY) -m opsbot.config.reference --write README.md --write README.zh-CN.md

## references: all three generated references, in README.md (English) and README.zh-CN.md (Chinese)
references: chat-reference mr-reference config-reference

## docs-images: retake docs/card.png and docs/release-page.png from a local stack of their own (needs chromium)
docs-images: $(VENV)/.installed
	$(PY) -m local.docs_images --port $(or $(DOCS_PORT),3700)

## golden: regenerate the .drone.yml golden files (tests/golden/drone) after an intended template change
golden: $(VENV)/.installed
	UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/unit/test_pipelines.py -k golden

## test: ruff (lint and format check), sam validate --lint, sam build, then unit and integration tests
##   (about 9 minutes on 2 cores once the virtualenvs are installed; each test run lists its 15 slowest)
test: lint validate build unit integration

## lint: ruff check and ruff format --check (settings in pyproject.toml); `ruff format .` fixes the format
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## unit: the unit tests (moto in-process, the fakes on loopback; 1,000 fuzzed bodies per route), in parallel
unit: $(VENV)/.installed
	$(PYTEST) tests/unit

## integration: the integration tests, in parallel (each worker starts the local stack on free ports), the browser
##   tests too
integration: $(VENV)/.installed $(CHROMEDRIVER)
	$(PYTEST) tests/integration

## fuzz: the fuzz at full size, which CI runs after make test: 10,000 bodies per route in-process and 2,000
##   DingTalk callbacks over HTTP (about 7 minutes on 2 cores; FUZZ_SEED=<seed> replays a run)
fuzz: $(VENV)/.installed
	FUZZ=full $(PYTEST) tests/unit/test_fuzz_ingress.py
	FUZZ=full $(PYTEST) tests/integration/test_chat_fuzz.py -k mutated_callbacks

# The browser tests drive Debian's chromium through its chromedriver (no browser download at run time), with a
# Chinese and an emoji font for what the pages say: installed with apt-get (as root) where missing.
$(CHROMEDRIVER):
	apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei fonts-noto-color-emoji \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-wqy-microhei fonts-noto-color-emoji)

## validate: sam validate --lint on template.yaml
validate: $(TOOLS)/.installed
	$(SAM) validate --lint

## build: sam build into .aws-sam/build (the layer for arm64, no container; functions and layer side by side)
build: $(TOOLS)/.installed
	$(SAM) build --build-dir .aws-sam/build --parallel

# pip-compile as `make lock` runs it: hashes for every file, no index URL or machine-local --find-links written
LOCK := $(TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links --upgrade

## lock: re-resolve each requirements.in into its hashed lock (the layer's, the worker's, the tools'), then
##   review the diff; the worker's is constrained to the layer's, so it is resolved second
lock: $(TOOLS)/.installed
	cd layers/opsbot && ../../$(LOCK) --output-file requirements.txt requirements.in
	cd functions/worker && ../../$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-tools.txt requirements-tools.in

## bench: cold-start and ingress-latency ratios against floors measured in the same run (about 7 minutes)
bench: $(VENV)/.installed
	$(PY) -m bench.run

## chaos: every flow crashed at each of its external calls (boto3, HTTP) in turn; nothing may be lost or doubled
##   (a line per crash point, then "crash points: N, lost: L, doubled: D"; FLOW='chat deploy' for one flow;
##   about 30 minutes on 2 cores)
chaos: $(VENV)/.installed
	$(PY) -m chaos.run $(if $(FLOW),--flow "$(FLOW)")

## config-validate: check a config directory (DIR=config/example, STAGE=local allows literal secrets)
config-validate: $(VENV)/.installed
	OPSBOT_STAGE=$(or $(STAGE),local) PYTHONPATH=layers/opsbot $(PY) -m opsbot.config_cli validate $(or $(DIR),config/example)

## config-load: reload a config directory into the running local stack (DIR=…, default the one it loaded)
config-load: $(VENV)/.installed
	$(PY) -m local.config_load $(DIR) --port $(PORT)

## config: the config CLI against a deployed stack, e.g. make config ARGS='diff path/to/config --stack opsbot-prod'
config: $(VENV)/.installed
	@test -n "$(ARGS)" || (echo "usage: make config ARGS='validate|load|export|diff DIR [--stack NAME] [--version V]'" && exit 2)
	PYTHONPATH=layers/opsbot $(PY) -m opsbot.config_cli $(ARGS)

## event: a copy of a sample signed now, and .aws-sam/env.json (the running stack's ports, its fakes pinned as the
##   only peers), for sam local invoke (needs Docker), e.g.
##   make event EVENT=events/drone/build_failure.json   (then the sam local invoke command it prints)
event: $(VENV)/.installed
	@test -n "$(EVENT)" || (echo "usage: make event EVENT=events/drone/build_failure.json" && exit 2)
	$(PY) -m local.sam_event $(EVENT) --port $(PORT)

## events: regenerate events/ from tests/fixtures
events: $(VENV)/.installed
	$(PY) -m local.make_events

## clean: remove the virtualenvs and .aws-sam (the next make run or make test sets them up again)
clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache
