# airlock: one plain Makefile.
#   make          build build/airlockd, build/airlock and the web UI
#   make run      install what is missing, build, start airlockd --dev on 127.0.0.1:8080
#   make test     every test, built with -fsanitize=address,undefined into build/san
#   make bench    benchmarks (ratios against a reference measured in the same run)
#   make clean

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
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Ibackend/common -Ibackend/server -Ibackend/agent \
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

.PHONY: all bin ui run test unit test-api test-e2e test-ui bench clean deps
all: bin ui
bin: $(BUILD)/airlockd $(BUILD)/airlock

deps:
	@scripts/install-deps build

$(BUILD)/obj/%.o: %.c
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

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libserver.a $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

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

test:
	@scripts/install-deps all
	$(MAKE) SAN=1 BUILD=build/san bin $(patsubst $(BUILD)/%,build/san/%,$(UNIT_BIN))
	$(MAKE) ui
	@tests/run-all build/san

bench: deps
	$(MAKE) all
	@bench/run $(BUILD)

clean:
	rm -rf build frontend/dist

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
