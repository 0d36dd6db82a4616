# smtp64: SMTP-aware IPv4/IPv6 translator gateway.  GNU make.
#
#   make            build smtp64d and the tools into build/
#   make check      unit tests (plain and with ASan/UBSan), then the
#                   end-to-end tests in network namespaces (needs root)
#   make demo       the lab: a v4-only MTA delivers to a v6-only MX
#   make fuzz       libFuzzer targets, each for FUZZ_SECONDS
#   make soak       a bounded load test (SOAK_SECONDS), not part of check
#   make install    honours PREFIX and DESTDIR

PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
MANDIR		?= $(PREFIX)/share/man
# systemd reads /usr/local/lib/systemd/system too.
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
# smtp64-lab's library (tests/lab/lib.sh and the files it uses).
LABDIR		?= $(PREFIX)/share/smtp64/lab
# PREFIX=/usr is a system install: its configuration lives in /etc.
SYSCONFDIR	?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DESTDIR		?=

CC		?= cc
PKG_CONFIG	?= pkg-config
CFLAGS		?= -O2 -g
STD		:= -std=c11 -D_DEFAULT_SOURCE
WARN		:= -Wall -Wextra -Wshadow -Wmissing-prototypes \
		   -Wstrict-prototypes -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN		+= -Werror
endif

# Debian 12's libev ships no .pc file; fall back to plain -lev.
EV_LIBS		:= $(shell $(PKG_CONFIG) --libs libev 2>/dev/null || echo -lev)
INIH_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags inih 2>/dev/null)
INIH_LIBS	:= $(shell $(PKG_CONFIG) --libs inih 2>/dev/null || echo -linih)
CMOCKA_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS	:= $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)
OPENSSL_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags openssl 2>/dev/null)
OPENSSL_LIBS	:= $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null || \
		     echo -lssl -lcrypto)
# The packet path (gateway/nfq.c): NFQUEUE over libmnl.
NFQ_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags libnetfilter_queue libmnl \
		     2>/dev/null)
NFQ_LIBS	:= $(shell $(PKG_CONFIG) --libs libnetfilter_queue libmnl \
		     2>/dev/null || echo -lnetfilter_queue -lnfnetlink -lmnl)

# Route mode's MX and address lookups (gateway/dns.c).
CARES_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags libcares 2>/dev/null)
CARES_LIBS	:= $(shell $(PKG_CONFIG) --libs libcares 2>/dev/null || echo -lcares)

# Privileges (gateway/privs.c): user =, the capabilities kept.
CAPNG_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags libcap-ng 2>/dev/null)
CAPNG_LIBS	:= $(shell $(PKG_CONFIG) --libs libcap-ng 2>/dev/null || echo -lcap-ng)
# [packet] engine = bpf: the tc program (nat/bpf/xlat.bpf.c) is built
# with clang's BPF target into an object that bpftool turns into a
# skeleton header (the object inside it), which gateway/bpf.c loads with
# libbpf.
LIBBPF_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags libbpf 2>/dev/null)
LIBBPF_LIBS	:= $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null || echo -lbpf)
BPF_CLANG	?= clang
BPFTOOL		?= bpftool
# <asm/types.h> of linux-libc-dev sits under the host's multiarch name.
BPF_ARCH_INC	:= /usr/include/$(shell $(CC) -dumpmachine 2>/dev/null)
BPF_CFLAGS	:= -target bpf -O2 -g -Wall -Wextra -I. -I$(BPF_ARCH_INC)

B		:= build
ALL_CFLAGS	= $(STD) $(WARN) $(CFLAGS) -I. -I$(B) $(INIH_CFLAGS) \
		  $(CMOCKA_CFLAGS) $(OPENSSL_CFLAGS) $(NFQ_CFLAGS) \
		  $(CARES_CFLAGS) $(LIBBPF_CFLAGS) $(CAPNG_CFLAGS)

# Sources are discovered: <dir>/<name>_test.c is a cmocka unit test of
# <dir>/<name>.c, <dir>/<name>_fuzz.c a libFuzzer target.
srcs		= $(filter-out %_test.c %_fuzz.c,$(wildcard $(1)/*.c))
SMTPFIX_SRC	:= $(call srcs,smtpfix)
NAT_SRC		:= $(call srcs,nat)
GW_SRC		:= $(filter-out gateway/main.c,$(call srcs,gateway))
TOOL_SRC	:= $(wildcard tools/smtp64-*.c)
TEST_SRC	:= $(wildcard smtpfix/*_test.c nat/*_test.c gateway/*_test.c)
FUZZ_SRC	:= $(wildcard smtpfix/*_fuzz.c nat/*_fuzz.c)

obj		= $(patsubst %.c,$(B)/obj/%.o,$(1))
LIBSMTPFIX	:= $(B)/libsmtpfix.a
LIBNAT		:= $(B)/libnat.a
LIBGW		:= $(B)/libgw.a
SMTP64D		:= $(B)/smtp64d
TOOLS		:= $(patsubst tools/%.c,$(B)/%,$(TOOL_SRC))
TOOL_MAN	:= $(wildcard docs/smtp64-*.1)
# smtp64-lab is a bash program over the lab library; installed, it finds
# the library in $(LABDIR) and smtp64d in $(SBINDIR).
LAB_TOOL	:= $(B)/smtp64-lab
LAB_FILES	:= tests/lab/lib.sh tests/lab/master.cf tests/lab/mkcert.sh \
		   tests/lab/smtpchat.py tests/lab/demo.conf
TESTS		:= $(patsubst %.c,$(B)/test/%,$(TEST_SRC))
GW_LIBS		:= $(EV_LIBS) $(INIH_LIBS) $(OPENSSL_LIBS) $(NFQ_LIBS) \
		   $(CARES_LIBS) $(LIBBPF_LIBS) $(CAPNG_LIBS)
BPF_OBJ		:= $(B)/bpf/xlat.bpf.o
BPF_SKEL	:= $(B)/bpf/xlat.skel.h
TOOL_LIBS	:= $(shell $(PKG_CONFIG) --libs libpcap 2>/dev/null || echo -lpcap)

.PHONY: all check unit sanitize e2e demo fuzz bench soak install uninstall \
	clean lint fmt fmt-check deps test-deps FORCE
all: $(SMTP64D) $(TOOLS) $(LAB_TOOL)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BPF_OBJ): nat/bpf/xlat.bpf.c nat/bpf/xlat_bpf.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) $(BPF_CFLAGS) -c -o $@ $<
$(BPF_SKEL): $(BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name smtp64_xlat >$@.tmp && mv $@.tmp $@
$(B)/obj/gateway/bpf.o: $(BPF_SKEL)

$(LIBSMTPFIX): $(call obj,$(SMTPFIX_SRC))
	$(AR) rcs $@ $^
$(LIBNAT): $(call obj,$(NAT_SRC))
	$(AR) rcs $@ $^
$(LIBGW): $(call obj,$(GW_SRC))
	$(AR) rcs $@ $^

VERSION		:= 0.1.0
# What is compiled into objects: the version (smtp64d and the tools) and
# the default configuration path (main.o).  The stamp file records them
# and is rewritten, so that those objects rebuild, only when they change:
# `make` then `make install PREFIX=/usr` recompiles main.o rather than
# install a binary that reads /usr/local/etc.
STAMP		:= $(B)/build.stamp
STAMP_TEXT	:= VERSION=$(VERSION) SYSCONFDIR=$(SYSCONFDIR)
$(STAMP): FORCE
	@mkdir -p $(dir $@)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(STAMP_TEXT)' ]; then \
	    printf '%s\n' '$(STAMP_TEXT)' >$@; fi
FORCE:
$(B)/obj/gateway/main.o $(call obj,$(TOOL_SRC)): $(STAMP)
$(B)/obj/gateway/main.o: ALL_CFLAGS += -DSMTP64_VERSION='"$(VERSION)"' \
	-DSMTP64_CONF='"$(SYSCONFDIR)/smtp64/smtp64.conf"'
$(call obj,$(TOOL_SRC)): ALL_CFLAGS += -DSMTP64_VERSION='"$(VERSION)"'
$(SMTP64D): $(call obj,gateway/main.c) $(LIBGW) $(LIBSMTPFIX) $(LIBNAT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(GW_LIBS)

$(B)/smtp64-%: $(call obj,tools/smtp64-%.c) $(LIBSMTPFIX) $(LIBNAT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TOOL_LIBS)

# In build/, it finds tests/lab/ and build/smtp64d beside it.
$(LAB_TOOL): tools/smtp64-lab
	@mkdir -p $(dir $@)
	install -m 755 $< $@

# A unit test links the library of its own directory and those below it:
# nat/ stands alone, smtpfix/ may use nat/, gateway/ uses both.
$(B)/test/nat/%_test: $(B)/obj/nat/%_test.o $(LIBNAT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS)
$(B)/test/smtpfix/%_test: $(B)/obj/smtpfix/%_test.o $(LIBSMTPFIX) $(LIBNAT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS)
$(B)/test/gateway/%_test: $(B)/obj/gateway/%_test.o $(LIBGW) $(LIBSMTPFIX) $(LIBNAT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(GW_LIBS)

# deps: what building needs (a gateway host); test-deps: also what the
# demo and make check run (Postfix, swaks, dnsmasq, clang...).
deps:
	@bash tools/install-deps build
test-deps:
	@bash tools/install-deps test

# Unit tests: one cmocka runner per module; tests/run-unit prints the total.
unit: $(TESTS)
	@bash tests/run-unit $(TESTS)

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer,
# built in a tree of their own so they never mix with the release objects.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	     -fno-sanitize-recover=all
sanitize:
	@$(MAKE) --no-print-directory B=$(B)/san CFLAGS="$(SAN_FLAGS)" \
	    LDFLAGS="$(SAN_FLAGS)" unit

# End-to-end tests: real Postfix, swaks and the daemon in network namespaces.
# Drivers that run one gateway module on its own in an e2e test.
DNS_DRIVER	:= $(B)/test/dns_driver
$(DNS_DRIVER): $(call obj,tests/e2e/dns_driver.c) $(LIBGW) $(LIBNAT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(GW_LIBS)

e2e: $(SMTP64D) $(TOOLS) $(DNS_DRIVER)
	@bash tests/run-e2e

check: test-deps
	@$(MAKE) --no-print-directory WERROR=1 all $(TESTS) $(DNS_DRIVER)
	@bash tests/check

demo: test-deps $(SMTP64D) $(TOOLS) $(LAB_TOOL)
	@bash tests/lab/demo.sh

FUZZ_SECONDS	?= 60
FUZZ_FLAGS	:= -O1 -g -fsanitize=fuzzer,address,undefined \
		   -fno-omit-frame-pointer
fuzz:
	@bash tests/run-fuzz $(FUZZ_SECONDS) $(FUZZ_SRC)

bench:
	@bash tools/install-deps bench
	@bash tests/bench/run $(if $(QUICK),--quick)
	@bash tests/bench/workers.sh $(if $(QUICK),--rounds 1)

# A bounded load test (tests/soak/run; not part of make check):
# SOAK_SECONDS of load (default 300, at most 1800).
SOAK_SECONDS	?= 300
soak: $(SMTP64D)
	@bash tests/soak/run --seconds $(SOAK_SECONDS)

lint:
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strncpy|gets|atoi)\(' \
	    $(SMTPFIX_SRC) $(NAT_SRC) $(GW_SRC) gateway/main.c $(TOOL_SRC) \
	    nat/bpf/xlat.bpf.c \
	    || { echo "lint: banned function (see STYLE)"; exit 1; }

FMT_SRC		= $(wildcard */*.c */*.h nat/bpf/*.c nat/bpf/*.h)
fmt:
	clang-format -i $(FMT_SRC)
fmt-check:
	clang-format --dry-run --Werror $(FMT_SRC)

# The systemd unit names the daemon and its configuration where this
# install puts them (contrib/smtp64d.service says /usr/local).
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSCONFDIR)/smtp64 $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 755 $(SMTP64D) $(DESTDIR)$(SBINDIR)/smtp64d
	$(if $(TOOLS),install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/)
	install -d $(DESTDIR)$(LABDIR)
	install -m 644 $(LAB_FILES) $(DESTDIR)$(LABDIR)/
	sed -e 's|^LAB_LIBDIR_INSTALLED=.*|LAB_LIBDIR_INSTALLED=$(LABDIR)|' \
	    -e 's|^LAB_SBINDIR_INSTALLED=.*|LAB_SBINDIR_INSTALLED=$(SBINDIR)|' \
	    tools/smtp64-lab >$(DESTDIR)$(BINDIR)/smtp64-lab
	chmod 755 $(DESTDIR)$(BINDIR)/smtp64-lab
	$(if $(TOOL_MAN),install -m 644 $(TOOL_MAN) $(DESTDIR)$(MANDIR)/man1/)
	install -m 644 docs/smtp64d.8 $(DESTDIR)$(MANDIR)/man8/smtp64d.8
	install -m 644 docs/smtp64.conf.5 $(DESTDIR)$(MANDIR)/man5/smtp64.conf.5
	install -m 644 docs/smtp64.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/smtp64/smtp64.conf.example
	sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
	    -e 's|/usr/local/etc/|$(SYSCONFDIR)/|g' contrib/smtp64d.service \
	    >$(DESTDIR)$(SYSTEMDUNITDIR)/smtp64d.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/smtp64d.service

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smtp64d \
	    $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS))) \
	    $(DESTDIR)$(BINDIR)/smtp64-lab \
	    $(addprefix $(DESTDIR)$(LABDIR)/,$(notdir $(LAB_FILES))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(TOOL_MAN))) \
	    $(DESTDIR)$(MANDIR)/man8/smtp64d.8 \
	    $(DESTDIR)$(MANDIR)/man5/smtp64.conf.5 \
	    $(DESTDIR)$(SYSCONFDIR)/smtp64/smtp64.conf.example \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/smtp64d.service

clean:
	rm -rf $(B)

# Test objects are intermediate files of the pattern rules: keep them, so
# a rebuild links instead of recompiling (and make prints no "rm" lines).
.SECONDARY:

-include $(shell find $(B) -name '*.d' 2>/dev/null)
