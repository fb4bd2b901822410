# mdmd — see README.md.  `make` builds bin/mdmd; `make SAN=1` builds an
# ASan+UBSan tree under build-san/; `make test` runs every test under it.

PKGS     := libevent libevent_openssl libevent_pthreads openssl libnghttp2 libplist-2.0 hiredis jansson libzstd
DEB_PKGS := gcc make pkg-config libc6-dev libevent-dev libssl-dev libnghttp2-dev libplist-dev \
            libhiredis-dev libjansson-dev libzstd-dev clang clang-format libclang-rt-14-dev redis-server redis-tools curl openssl ca-certificates libplist-utils iproute2 valgrind \
            chromium nodejs scep python3 python3-yaml

# The one place the version lives: mdmd --version, mdmctl --version, /metrics.
VERSION := 0.1.0

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing -MMD -MP
CFLAGS  += -DMDMD_VERSION='"$(VERSION)"'
LDLIBS  += -lpthread

ifeq ($(SAN),1)
  B       := build-san
  BIN     := build-san/bin
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(FUZZ),1)
  # libFuzzer: the whole library instrumented, each test/fuzz target linked
  # with the fuzzer's main.  clang's warnings differ from gcc's: not fatal here.
  CC      := clang
  B       := build-fuzz
  BIN     := build-fuzz/bin
  CFLAGS  += -O1 -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -Wno-error
  LDFLAGS += -fsanitize=address,undefined
else
  B       := build
  BIN     := bin
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

MODULES   := core handlers push ca store
LIB_SRCS  := $(filter-out core/main.c,$(wildcard $(addsuffix /*.c,$(MODULES)) $(addsuffix /*/*.c,$(MODULES))))
LUA_SRCS  := $(filter-out store/lua/prelude.lua,$(wildcard store/lua/*.lua))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o) $(B)/store/lua_scripts.o $(B)/handlers/api/openapi_json.o
# The web console's files (web/) are compiled in as byte arrays.
WEB_SRCS  := $(filter-out web/embed.sh,$(wildcard web/*))
LIB_OBJS  += $(B)/web/console_files.o
UNIT_SRCS := $(wildcard test/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(BIN)/%)
TOOL_SRCS := $(filter-out test/tools/wrkcert.c,$(wildcard test/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:test/tools/%.c=$(BIN)/%)
CLI_SRCS  := $(wildcard cli/*.c)
CLI_OBJS  := $(CLI_SRCS:%.c=$(B)/%.o)

.PHONY: all deps run test san clean bench format lint fuzz fuzz-build install man
.SECONDARY:
all: $(BIN)/mdmd $(BIN)/mdmctl $(TOOL_BINS) $(BIN)/wrkcert.so

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(B)/web/console_files.c: web/embed.sh $(WEB_SRCS)
	@mkdir -p $(dir $@)
	sh web/embed.sh $(WEB_SRCS) > $@

$(B)/web/console_files.o: $(B)/web/console_files.c handlers/console/console_files.h
	$(CC) $(CFLAGS) -I. -c $< -o $@

# Redis scripts live as .lua files; they are compiled in as strings.
$(B)/store/lua_scripts.c: store/lua/embed.sh store/lua/prelude.lua $(LUA_SRCS)
	@mkdir -p $(dir $@)
	sh store/lua/embed.sh store/lua/prelude.lua $(LUA_SRCS) > $@

$(B)/store/lua_scripts.o: $(B)/store/lua_scripts.c
	$(CC) $(CFLAGS) -c $< -o $@

# The OpenAPI document is served from the binary, built in the same way.
$(B)/handlers/api/openapi_json.c: docs/openapi.json
	@mkdir -p $(dir $@)
	{ echo 'extern const char api_openapi_json[];'; echo 'const char api_openapi_json[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo '    ;'; } > $@

$(B)/handlers/api/openapi_json.o: $(B)/handlers/api/openapi_json.c
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libmdmd.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN)/mdmd: $(B)/core/main.o $(B)/libmdmd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# The admin CLI (cli/): a product binary over the REST API; it takes util from the library.
$(BIN)/mdmctl: $(CLI_OBJS) $(B)/libmdmd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BIN)/test_%: $(B)/test/unit/test_%.o $(B)/libmdmd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BIN)/%: $(B)/test/tools/%.o $(B)/libmdmd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# make bench's LD_PRELOAD shim for wrk (a client certificate): loaded into
# an uninstrumented wrk, so never built with the sanitizers.
$(BIN)/wrkcert.so: test/tools/wrkcert.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Werror -fPIC -shared -o $@ $< -lssl -lcrypto -ldl -lpthread

FUZZ_SRCS := $(wildcard test/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:test/fuzz/%.c=build-fuzz/bin/%)
FUZZ_SECONDS ?= 60

build-fuzz/bin/fuzz_%: build-fuzz/test/fuzz/fuzz_%.o build-fuzz/libmdmd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# The handler targets run the real handlers over the fake store
# (test/fuzz/fake_store.c in place of store/store.o; the typed store ops stay).
FAKE_OBJS := build-fuzz/test/fuzz/fake_store.o build-fuzz/test/fuzz/handler_env.o
build-fuzz/libmdmd_fake.a: $(filter-out build-fuzz/store/store.o,$(LIB_OBJS:$(B)/%=build-fuzz/%))
	@rm -f $@
	ar rcs $@ $^

build-fuzz/bin/fuzz_handler_%: build-fuzz/test/fuzz/fuzz_handler_%.o $(FAKE_OBJS) build-fuzz/libmdmd_fake.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# The trees are built in parallel, one job per CPU: most of make test's
# wall time before the tests is compiling three trees.
JOBS := -j$(shell nproc 2>/dev/null || echo 2)

fuzz-build:
	@$(MAKE) --no-print-directory $(JOBS) FUZZ=1 $(FUZZ_BINS)

# Each target for FUZZ_SECONDS on a scratch copy of its seed corpus.
fuzz: deps fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh test/fuzz/run.sh

# Installs only what is missing; a no-op on a machine that has everything.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@# The console's browser test: playwright-core from npm (Debian splits npm
	@# out of nodejs; NodeSource's nodejs ships it).
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	@test -d test/browser/node_modules/playwright-core || \
	  (cd test/browser && npm ci --no-audit --no-fund --loglevel=error) || \
	  echo "warning: npm ci in test/browser failed; the console test will fail"

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	@test -f var/mdmd.conf || cp mdmd.conf.example var/mdmd.conf
	$(BIN)/mdmd -c var/mdmd.conf

san:
	@$(MAKE) --no-print-directory SAN=1 all

# The release tree too: valgrind.sh runs it (ASan binaries cannot run under valgrind).
test: deps fuzz-build
	@$(MAKE) --no-print-directory $(JOBS) all
	@$(MAKE) --no-print-directory $(JOBS) SAN=1 all $(addprefix build-san/bin/,$(notdir $(UNIT_BINS)))
	@BIN=build-san/bin sh test/run.sh

# The benchmark also runs yardsticks (nginx, nghttpd + h2load) not needed otherwise.
BENCH_PKGS := nginx wrk nghttp2-server nghttp2-client
bench: deps all $(BIN)/test_push $(BIN)/test_cluster $(BIN)/devload $(BIN)/wrkcert.so
	@missing=""; for p in $(BENCH_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi
	@BIN=bin bash test/bench_wrk.sh
	@BIN=bin bash test/bench.sh
	@BIN=bin bash test/bench_ddm.sh
	@BIN=bin bash test/bench_workers.sh
	@BIN=bin bash test/bench_cluster.sh

# ---- make install [PREFIX=/usr/local] [DESTDIR=] (docs/man/mdmd.8 "FILES") ----
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/mdmd
# /usr puts the configuration in /etc and the unit where the distribution's are.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MAN_PAGES  := $(B)/man/mdmd.8 $(B)/man/mdmd.conf.5 $(B)/man/mdmctl.1
INSTALL    ?= install

$(B)/man/%: docs/man/%
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/g' $< > $@

# The KEYS section comes from mdmd.conf.example, which names every key.
$(B)/man/mdmd.conf.5: docs/man/mdmd.conf.5.in docs/man/conf2man.sh mdmd.conf.example
	@mkdir -p $(dir $@)
	sh docs/man/conf2man.sh docs/man/mdmd.conf.5.in mdmd.conf.example $(VERSION) > $@

man: $(MAN_PAGES)

install: $(BIN)/mdmd $(BIN)/mdmctl $(MAN_PAGES)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/mdmd
	$(INSTALL) -m 755 $(BIN)/mdmd $(DESTDIR)$(SBINDIR)/mdmd
	$(INSTALL) -m 755 $(BIN)/mdmctl $(DESTDIR)$(BINDIR)/mdmctl
	$(INSTALL) -m 644 $(B)/man/mdmctl.1 $(DESTDIR)$(MANDIR)/man1/mdmctl.1
	$(INSTALL) -m 644 $(B)/man/mdmd.conf.5 $(DESTDIR)$(MANDIR)/man5/mdmd.conf.5
	$(INSTALL) -m 644 $(B)/man/mdmd.8 $(DESTDIR)$(MANDIR)/man8/mdmd.8
	$(INSTALL) -m 644 README.md mdmd.conf.example docs/*.md docs/openapi.json $(DESTDIR)$(DOCDIR)/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/mdmd.service.in \
	  > $(DESTDIR)$(UNITDIR)/mdmd.service && chmod 644 $(DESTDIR)$(UNITDIR)/mdmd.service
	$(INSTALL) -m 644 dist/mdmd.sysusers $(DESTDIR)$(SYSUSERSDIR)/mdmd.conf
	@# An existing configuration is the administrator's: never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/mdmd/mdmd.conf || \
	  sed 's|^data_dir var$$|data_dir /var/lib/mdmd|' mdmd.conf.example \
	  > $(DESTDIR)$(SYSCONFDIR)/mdmd/mdmd.conf

# The house style (.clang-format) and the rules a compiler does not check
# (test/lint.py); make test runs the same checks (test/integration/lint.sh).
# handlers/apple/mdm_schema.c, mdm_checkin_schema.c and ddm_schema.c are generated
# (test/gen_schema.sh, test/gen_checkin_schema.sh, test/gen_ddm_schema.py): left as made.
FORMAT_SRCS = $(filter-out handlers/apple/mdm_schema.c handlers/apple/mdm_checkin_schema.c handlers/apple/ddm_schema.c,$(shell git ls-files '*.c' '*.h' 2>/dev/null))
format:
	clang-format -i $(FORMAT_SRCS)

lint:
	@python3 test/lint.py

clean:
	rm -rf build build-san build-fuzz bin

-include $(shell find build build-san build-fuzz -name '*.d' 2>/dev/null)
