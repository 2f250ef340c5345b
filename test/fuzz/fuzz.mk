# test/fuzz/fuzz.mk: libFuzzer harnesses, one per parser of untrusted bytes.
#
# Self-contained: include it from the GNUmakefile, or use it beside it with
# "make -f GNUmakefile -f test/fuzz/fuzz.mk fuzz". Every variable is FUZZ_*
# and nothing from the main GNUmakefile (CC, CFLAGS, CPPFLAGS, B) is used.
#
#   make fuzz-build                 build/fuzz/fuzz_* (clang, ASan, UBSan)
#   make fuzz [FUZZ_SECONDS=20]     runs each harness that long on a copy of
#                                   its seeds in build/fuzz/corpus-<name>;
#                                   fails when one crashes
#   make fuzz-regress               runs each harness once over its seeds and
#                                   over test/fuzz/crashes/<name>/ (no fuzzing)
#   make fuzz-seeds                 rewrites the seeds that only our code can
#                                   make (an issued JWT, encoded records)
#
# Findings go to build/fuzz/crashes-<name>/, logs to build/fuzz/<name>.log.

FUZZ_CC       := clang
FUZZ_SECONDS  ?= 20
FUZZ_DIR      := test/fuzz
FUZZ_B        := build/fuzz
FUZZ_CPPFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   := -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_LDFLAGS  := -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_WARN     := -Wall -Wextra -Werror
# libfcgi as the service links it: a copy of Debian's libfcgi.a with its
# accept/read/close and FCGX_Accept_r renamed (the same list as FCGI_RENAME
# in the GNUmakefile, which says why), so the guard sits in front of it.
FUZZ_FCGI_A    = $(shell $(FUZZ_CC) -print-file-name=libfcgi.a)
FUZZ_FCGI_LIB := $(FUZZ_B)/libfcgi-guard.a
FUZZ_RENAME   := --redefine-sym accept=fcgi_guard_accept \
                 --redefine-sym read=fcgi_guard_read \
                 --redefine-sym close=fcgi_guard_close \
                 --redefine-sym FCGX_Accept_r=fcgi_lib_FCGX_Accept_r
FUZZ_LIBS     := $(FUZZ_FCGI_LIB) -lm -lcurl -ljansson -ldb-5.3 -lcrypto \
                 -pthread
# All of app/ but main.c, admin.c (the admin tool's main) and fcgi.c
# (the harnesses drive the guard and the parsers directly).
FUZZ_LAYERS   := $(filter-out main admin admin_backup fcgi,$(patsubst app/%.c,%,$(wildcard app/*.c)))
FUZZ_OBJS     := $(FUZZ_LAYERS:%=$(FUZZ_B)/obj/%.o)
FUZZ_HDRS     := $(wildcard include/*.h)
FUZZ_NAMES    := $(patsubst $(FUZZ_DIR)/%.c,%,$(wildcard $(FUZZ_DIR)/fuzz_*.c))
FUZZ_BINS     := $(FUZZ_NAMES:%=$(FUZZ_B)/%)

# Included first, this file must not take the main file's default goal.
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

.PHONY: fuzz-build fuzz fuzz-regress fuzz-seeds
fuzz-build: $(FUZZ_BINS)

# Warnings are errors for the app's code under clang too.
$(FUZZ_OBJS): $(FUZZ_B)/obj/%.o: app/%.c $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_WARN) -c -o $@ $<

$(FUZZ_FCGI_LIB): $(FUZZ_DIR)/fuzz.mk $(FUZZ_FCGI_A)
	@mkdir -p $(@D)
	objcopy $(FUZZ_RENAME) $(FUZZ_FCGI_A) $@

$(FUZZ_BINS): $(FUZZ_B)/%: $(FUZZ_DIR)/%.c $(FUZZ_DIR)/fuzz_key.h \
    $(FUZZ_OBJS) $(FUZZ_HDRS) $(FUZZ_FCGI_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_WARN) \
	    $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

fuzz: $(FUZZ_BINS)
	@FUZZ_B=$(FUZZ_B) FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	    sh $(FUZZ_DIR)/run.sh $(FUZZ_NAMES)

fuzz-regress: $(FUZZ_BINS)
	@FUZZ_B=$(FUZZ_B) FUZZ_DIR=$(FUZZ_DIR) \
	    sh $(FUZZ_DIR)/run.sh -regress $(FUZZ_NAMES)

$(FUZZ_B)/mkseeds: $(FUZZ_DIR)/mkseeds.c $(FUZZ_DIR)/fuzz_key.h \
    $(FUZZ_OBJS) $(FUZZ_HDRS) $(FUZZ_FCGI_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_WARN) \
	    -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

fuzz-seeds: $(FUZZ_B)/mkseeds
	$(FUZZ_B)/mkseeds $(FUZZ_DIR)/corpus

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
