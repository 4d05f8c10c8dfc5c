# spmtier — the entry points a newcomer needs:
#   make deps    install every Debian 12 package the build and the tests need, and fetch the
#                vm suite's kernels into /var/cache/spmtier-vm (idempotent)
#   make         build into build/
#   make check   deps + build + every test suite + the unit, fakekfd, fuzz-corpus and integration
#                suites again under ASan+UBSan
#   make demo    deps + build + the demo
#   make bench   the benchmarks (BENCH lines; never run as tests)
#   make traces  regenerate the bundled traces from their workload configs

BUILD      ?= build
BUILD_SAN  ?= build-asan
MESON      ?= meson
# Suites CI must run: a skipped test in one of these fails `make check`.
REQUIRED_SUITES ?= unit tools fakekfd sim integration fuzz slurm vm
# Suites make check runs, in order of cost.
SUITES     ?= unit tools fakekfd sim integration fuzz slurm vm

DEPS = build-essential meson zlib1g-dev ninja-build pkg-config python3 \
       libsystemd-dev libjson-c-dev libnuma-dev libhsakmt-dev linux-libc-dev \
       clang-14 libclang-rt-14-dev valgrind \
       varlink-go systemd groff-base util-linux \
       qemu-system-x86 busybox-static cpio \
       slurmctld slurmd slurm-client munge libslurm-dev

.PHONY: all deps build check check-suites check-asan demo bench clean distclean traces

all: build

deps:
	@tools/install-deps $(DEPS)
	@tools/fetch-vm-kernel

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --werror

build: $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

$(BUILD_SAN)/build.ninja:
	CC=clang-14 $(MESON) setup $(BUILD_SAN) --werror -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug

check: deps build
	@$(MAKE) --no-print-directory check-suites
	@$(MAKE) --no-print-directory check-asan

check-suites:
	@tools/run-suites --build $(BUILD) --required "$(REQUIRED_SUITES)" $(SUITES)

check-asan: $(BUILD_SAN)/build.ninja
	$(MESON) compile -C $(BUILD_SAN)
	@tools/run-suites --build $(BUILD_SAN) --required "unit fakekfd fuzz integration" unit fakekfd fuzz integration

demo: deps build
	@tools/demo $(BUILD)

bench: build
	@tools/run-bench $(BUILD)

# Regenerates tests/data/traces/*.trace.gz from tests/data/workloads/*.conf.
traces: build
	@tools/gen-traces $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)

distclean: clean
