# airlock: one plain Makefile.
#   make          build build/airlockd, build/airlock and the web UI
#   make run      install what is missing, build, start airlockd --dev on 127.0.0.1:8080
#   make test     every test, built with -fsanitize=address,undefined into build/san
#   make bench    benchmarks (ratios against a reference measured in the same run)
#   make lint     banned functions (STYLE.md); also clang-format with LINT_FORMAT=1
#   make install  PREFIX (/usr/local), DESTDIR: programs, UI, agent bundle, systemd unit, example config
#   make dist     the portable agent: build/dist/airlock-linux-amd64.tar.gz and its .sha256
#   make clean

# The one version: airlock --version, airlockd --version, /api/v1/config and the
# X-Airlock-Version header (the agent and the CLI warn when the server's differs).
AIRLOCK_VERSION := 0.1.0
BUILD ?= build
SAN ?= 0
CC ?= cc
PKGS := libmicrohttpd jansson libjwt sqlite3 libcurl libssh yaml-0.1 openssl

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations \
	-Wpointer-arith -Wsign-compare -Wformat=2 -Werror=implicit-function-declaration
CFLAGS ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DAIRLOCK_VERSION='"$(AIRLOCK_VERSION)"' $(WARN) $(CFLAGS) -Ibackend/common -Ibackend/server -Ibackend/agent \
	-I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lutil -lpthread -lm

COMMON_SRC := $(wildcard backend/common/*.c)
SERVER_SRC := $(filter-out backend/server/main.c,$(wildcard backend/server/*.c))
AGENT_SRC := $(filter-out backend/agent/main.c,$(wildcard backend/agent/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC)) $(BUILD)/obj/gen/migrations.o
AGENT_OBJ := $(call obj,$(AGENT_SRC))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all bin ui run test unit test-api test-e2e test-ui bench clean deps lint format-check install dist FORCE
all: bin ui
bin: $(BUILD)/airlockd $(BUILD)/airlock

deps:
	@scripts/install-deps build

# Rewritten only when AIRLOCK_VERSION changes, so that a new version rebuilds every object.
$(BUILD)/gen/version: FORCE
	@mkdir -p $(dir $@)
	@echo '$(AIRLOCK_VERSION)' | cmp -s - $@ || echo '$(AIRLOCK_VERSION)' > $@
FORCE:

$(BUILD)/obj/%.o: %.c $(BUILD)/gen/version
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Migrations are embedded: migrations/NNNN_name.sql become a C array in order.
$(BUILD)/gen/migrations.c: $(sort $(wildcard migrations/*.sql)) scripts/embed-migrations
	@mkdir -p $(dir $@)
	scripts/embed-migrations $(sort $(wildcard migrations/*.sql)) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libserver.a: $(SERVER_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/airlockd: $(BUILD)/obj/backend/server/main.o $(BUILD)/libserver.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/airlock: $(BUILD)/obj/backend/agent/main.o $(BUILD)/libagent.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/gen/version $(BUILD)/libserver.a $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(filter-out %/gen/version,$^) $(LIBS) -lcmocka

# The portable agent (LIBS.md 8): the plain build's airlock, every library ldd lists and the
# loader, started by a /bin/sh launcher; always from the plain build (BUILD=build), never SAN.
dist:
	$(MAKE) BUILD=build SAN=0 build/airlock
	scripts/make-dist build/airlock build/dist

# The web UI: built only when its sources change (stamp on the lock file and sources).
UI_SRC := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.* -type f 2>/dev/null)
ui: frontend/dist/index.html
frontend/dist/index.html: $(UI_SRC) frontend/package-lock.json
	@if [ -f frontend/package.json ]; then \
		cd frontend && ( [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund ) && npm run build; \
	else mkdir -p frontend/dist && echo '<!doctype html><title>airlock</title><p>UI not built' > $@; fi
frontend/package-lock.json:
	@true

run: deps
	$(MAKE) all
	@mkdir -p var
	@scripts/run-hint
	exec $(BUILD)/airlockd --dev --config docs/examples/airlock.yaml --data-dir var --listen 127.0.0.1:8080

unit: $(UNIT_BIN)
	@tests/run-unit $(UNIT_BIN)

# Banned functions and clang-format (LINT_FORMAT=0 skips the format check, e.g. with another
# clang-format version than Debian 12's 14).
LINT_FORMAT ?= 1
FORMAT_SRC = $(wildcard backend/*/*.c backend/*/*.h)
lint:
	@scripts/lint
ifeq ($(LINT_FORMAT),1)
	@$(MAKE) --no-print-directory format-check
endif
format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC) && echo "format-check: $(words $(FORMAT_SRC)) files clean"

test:
	@scripts/install-deps all
	$(MAKE) lint
	$(MAKE) SAN=1 BUILD=build/san bin $(patsubst $(BUILD)/%,build/san/%,$(UNIT_BIN))
	$(MAKE) ui
	@tests/run-all build/san

bench: deps
	$(MAKE) all
	@bench/run $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]. The unit is installed with
# these paths substituted; the example config goes to SYSCONFDIR/airlock only when none is there.
# The UI and the agent bundle are installed when they were built (make ui, the agent bundle in
# $(BUILD)/dist); the service user comes from the sysusers file (run systemd-sysusers).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR = $(PREFIX)/bin
DATADIR = $(PREFIX)/share/airlock
DOCDIR = $(PREFIX)/share/doc/airlock
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
AGENT_BUNDLE = $(BUILD)/dist/airlock-linux-amd64.tar.gz
install: bin
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 $(BUILD)/airlockd $(BUILD)/airlock $(DESTDIR)$(BINDIR)/
	@if [ -f frontend/dist/index.html ]; then \
		echo "install: UI -> $(DESTDIR)$(DATADIR)/ui"; \
		rm -rf $(DESTDIR)$(DATADIR)/ui && install -d -m 0755 $(DESTDIR)$(DATADIR)/ui && \
		cp -R frontend/dist/. $(DESTDIR)$(DATADIR)/ui/ && chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/ui; \
	else echo "install: frontend/dist is not built (make ui): UI not installed"; fi
	@if [ -f $(AGENT_BUNDLE) ]; then \
		echo "install: agent bundle -> $(DESTDIR)$(DATADIR)/dist"; \
		install -d -m 0755 $(DESTDIR)$(DATADIR)/dist && \
		install -m 0644 $(AGENT_BUNDLE) $(wildcard $(AGENT_BUNDLE).sha256) $(DESTDIR)$(DATADIR)/dist/; \
	else echo "install: no agent bundle in $(BUILD)/dist: skipped"; fi
	sed -e 's|/usr/local/bin/airlockd|$(BINDIR)/airlockd|' \
		-e 's|/usr/share/airlock/ui|$(DATADIR)/ui|' \
		-e 's|/usr/share/airlock/dist|$(DATADIR)/dist|' \
		-e 's|/etc/airlock/airlock.yaml|$(SYSCONFDIR)/airlock/airlock.yaml|' \
		-e 's|file:///usr/share/doc/airlock/|file://$(DOCDIR)/|' \
		deploy/airlockd.service > $(DESTDIR)$(UNITDIR)/airlockd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/airlockd.service.tmp
	mv $(DESTDIR)$(UNITDIR)/airlockd.service.tmp $(DESTDIR)$(UNITDIR)/airlockd.service
	install -m 0644 deploy/airlock.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/airlock.conf
	install -m 0644 docs/deployment.md docs/configuration.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 docs/examples/airlock.yaml $(DESTDIR)$(DOCDIR)/examples/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/airlock/airlock.yaml ]; then \
		echo "install: $(DESTDIR)$(SYSCONFDIR)/airlock/airlock.yaml exists: left as it is"; \
	else \
		install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/airlock && \
		install -m 0640 docs/examples/airlock.yaml $(DESTDIR)$(SYSCONFDIR)/airlock/airlock.yaml && \
		{ getent group airlock >/dev/null && chgrp airlock $(DESTDIR)$(SYSCONFDIR)/airlock/airlock.yaml || \
		  echo "install: no group airlock yet: chgrp airlock $(SYSCONFDIR)/airlock/airlock.yaml after systemd-sysusers"; } && \
		echo "install: example config -> $(DESTDIR)$(SYSCONFDIR)/airlock/airlock.yaml (dev: true: edit it)"; \
	fi

clean:
	rm -rf build frontend/dist

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
