# nodeprep: `make demo` runs the agent on an embedded simulated node,
# `make test` runs the tests. Both install what they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
export NODEPREP_CACHE ?= $(CURDIR)/.cache
# Semantic version (the Packer SDK requires one) plus the commit as build metadata.
VERSION ?= 0.1.0
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION)+$(COMMIT)
# grpcnotrace drops grpc's golang.org/x/net/trace, whose html/template
# makes the linker keep every exported method of every reachable type
# (text/template calls methods by name): the EC2 client's ~700 operations
# came back and the agent grew from 23 to 56 MB. agent/deps_test.go reads
# this line.
AGENT_TAGS := grpcnotrace
PLUGIN_LDFLAGS := -X github.com/nodeprep/nodeprep/packer/version.Version=$(VERSION) -X github.com/nodeprep/nodeprep/packer/version.VersionMetadata=$(COMMIT)
GO_TEST_FLAGS ?= -count=1 -timeout 25m
BIN := $(CURDIR)/bin

# Debian packages the tests and the demo use: iproute2 for netns and veth,
# systemd for systemd-analyze, kmod for modinfo.
APT_PACKAGES := iproute2 systemd kmod ca-certificates
DEPS_STAMP := $(NODEPREP_CACHE)/deps-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8).stamp

.PHONY: help
help:
	@echo "make demo         run nodeprep on an embedded simulated node"
	@echo "make test         run the test suite (what CI runs)"
	@echo "make bench        run the benchmarks"
	@echo "make bench-fleet  boot FLEET_NODES x FLEET_ENIS (500 x 2) against one EC2 simulator"
	@echo "make bench-fleet-matrix  bench-fleet for 50/200/500 x 1/2/3 ENIs x sourceDestCheck, plus a fault mix"
	@echo "make fuzz         run each fuzz target for FUZZTIME (default 60s)"
	@echo "make test-fault-sweep  every EC2 call x 5 faults x {deadline, SIGTERM, SIGKILL} (make test runs a third)"
	@echo "make test-vm      real-kernel tests in QEMU (vfio-pci, hugepages)"
	@echo "make test-packer  acceptance test: real Packer builds a Debian target in QEMU"
	@echo "make test-boot    boot the Packer-built image under systemd: ordering, journal, ENI hot-plug"
	@echo "make build        build bin/nodeprep, bin/ec2sim and bin/packer-plugin-nodeprep"
	@echo "make build-arm64  build bin/linux-arm64/nodeprep and the plugin for arm64 (Graviton)"
	@echo "make cni-bundle-arm64  the CNI bundle for arm64"
	@echo "make test-arm64   the agent's unit tests as arm64 binaries under qemu-aarch64 (user mode)"
	@echo "make test-arm64-vm  arm64 kernel on qemu virt + SMMUv3: a NIC bound to vfio-pci"
	@echo "make cni-bundle   build the CNI plugin bundle (multus, reference plugins, whereabouts)"

$(DEPS_STAMP):
	@mkdir -p $(NODEPREP_CACHE)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo ">> installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

.PHONY: deps
deps: $(DEPS_STAMP)

# The IAM policy's judge (test/iam): @cloud-copilot/iam-simulate from npm,
# installed once into the cache; test/iam finds it there.
IAM_SIMULATE_VERSION := 0.1.173
IAM_SIMULATE_STAMP := $(NODEPREP_CACHE)/iam-simulate/.installed-$(IAM_SIMULATE_VERSION)
$(IAM_SIMULATE_STAMP):
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@mkdir -p $(NODEPREP_CACHE)/iam-simulate
	cd $(NODEPREP_CACHE)/iam-simulate && { [ -f package.json ] || echo '{"private": true}' > package.json; } && \
		npm install --no-audit --no-fund --loglevel=error @cloud-copilot/iam-simulate@$(IAM_SIMULATE_VERSION)
	@touch $@

.PHONY: iam-simulate
iam-simulate: $(IAM_SIMULATE_STAMP)

.PHONY: build
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 go build -trimpath -tags '$(AGENT_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/nodeprep ./agent
	go build -o $(BIN)/ec2sim ./test/ec2sim/cmd/ec2sim
	cd packer && go build -trimpath -ldflags '$(PLUGIN_LDFLAGS)' -o $(BIN)/packer-plugin-nodeprep ./cmd/packer-plugin-nodeprep

.PHONY: cni-bundle
cni-bundle:
	./test/cnibundle/build.sh

# Graviton: the agent and the plugin cross-built for arm64 (pure Go, no cgo).
.PHONY: build-arm64
build-arm64:
	@mkdir -p $(BIN)/linux-arm64
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -tags '$(AGENT_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/linux-arm64/nodeprep ./agent
	cd packer && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags '$(PLUGIN_LDFLAGS)' -o $(BIN)/linux-arm64/packer-plugin-nodeprep ./cmd/packer-plugin-nodeprep

.PHONY: cni-bundle-arm64
cni-bundle-arm64:
	CNI_BUNDLE_GOARCH=arm64 ./test/cnibundle/build.sh

# The agent's unit tests compiled for arm64 and run by qemu-aarch64 (Debian's
# qemu-user-static). Packages that need root, netns or the VM beds skip or
# are left out (TEST_ARM64_PKGS).
TEST_ARM64_PKGS ?= ./agent/... ./internal/...
.PHONY: test-arm64
test-arm64:
	./test/arm64/run.sh $(TEST_ARM64_PKGS)

# Debian's arm64 cloud kernel on qemu-system-aarch64 virt with an SMMUv3: a
# NIC bound to vfio-pci and opened through VFIO.
.PHONY: test-arm64-vm
test-arm64-vm:
	./test/arm64/vm.sh

.PHONY: test
test: deps cni-bundle iam-simulate
	go vet ./...
	go test $(GO_TEST_FLAGS) ./...
	@# packer/ is its own module (so the agent's build carries nothing of Packer's).
	cd packer && go vet ./... && go test $(GO_TEST_FLAGS) ./...
	@# kubelet's own config validation and CPU/memory/topology managers judge every CPU profile
	@# (its own module: k8s.io/kubernetes stays out of the agent's build).
	cd test/judges/kubelet && go vet ./... && go test $(GO_TEST_FLAGS) ./...
	@# The SR-IOV network device plugin's own config reading and selectors judge its config file
	@# (its own module; upstream/ is the plugin's v3.9.0 source, committed: the proxy does not serve it).
	cd test/judges/sriovdp && go vet ./... && go test $(GO_TEST_FLAGS) ./...
	@# One boot of the Packer-built image (test/boot): READY ordering, STATUS, journal fields.
	./test/boot/run.sh -run 'TestBootNode/(ReadyBeforeKubelet|StatusWhileAttaching|Journal)$$'

.PHONY: bench
bench: deps
	go test -run '^$$' -bench . -benchmem -count=1 ./...

# A boot storm against one EC2 simulator at the defaults a user gets (ENI
# deadline, retry mode, rate control): FLEET_NODES nodes with FLEET_ENIS
# ENIs each (FLEET_SOURCE_DEST_CHECK=false adds an attribute change per
# ENI, FLEET_FAULTS=mix lost answers, 5xx and slow visibility). Prints one
# "fleet: ..." line; see test/fleet for the bound. bench-fleet-matrix runs
# FLEET_MATRIX ("NODESxENIS:SDC[:mix]" rows) one after the other.
FLEET_NODES ?= 500
FLEET_ENIS ?= 2
.PHONY: bench-fleet
bench-fleet:
	@FLEET_NODES=$(FLEET_NODES) FLEET_ENIS=$(FLEET_ENIS) go run ./test/fleet/cmd/bench-fleet

# The full ENI fault sweep (every call x fault x ending, on two instances);
# make test runs a rotating third of it.
.PHONY: test-fault-sweep
test-fault-sweep:
	NODEPREP_FAULT_SWEEP=full go test -count=1 -timeout 30m -run '^TestFaultSweep$$' -v ./internal/eni

FLEET_MATRIX ?= $(foreach n,50 200 500,$(foreach e,1 2 3,$(foreach c,unset false,$(n)x$(e):$(c)))) 500x2:false:mix
.PHONY: bench-fleet-matrix
bench-fleet-matrix:
	@go build -o $(BIN)/bench-fleet ./test/fleet/cmd/bench-fleet
	@for row in $(FLEET_MATRIX); do \
		n=$${row%%x*}; IFS=: read -r e c f <<<"$${row#*x}"; \
		FLEET_NODES=$$n FLEET_ENIS=$$e FLEET_SOURCE_DEST_CHECK=$$c FLEET_FAULTS=$${f:-none} $(BIN)/bench-fleet || exit 1; \
	done

FUZZTIME ?= 60s
# Every fuzz target in the module, found with go test -list, each for
# FUZZTIME. `make test` runs their seed corpora (testdata/fuzz included) as
# ordinary tests; a crash found here is saved under testdata/fuzz: commit it.
FUZZ_PKGS = $(sort $(dir $(shell grep -rl --include='*_test.go' '^func Fuzz' internal agent test 2>/dev/null)))
.PHONY: fuzz
fuzz:
	@set -e; for dir in $(FUZZ_PKGS); do \
		for target in $$(go test -list '^Fuzz' ./$$dir | grep '^Fuzz'); do \
			echo ">> $$dir $$target ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./$$dir; \
		done; \
	done

.PHONY: test-vm
test-vm:
	./test/vm/run.sh
	./test/dpdkvm/run.sh

.PHONY: test-packer
test-packer:
	./test/packer/run.sh
	@# The write-combining vfio-pci the plugin's script builds, judged by the kernel's PAT list.
	NODEPREP_VM=1 NODEPREP_VM_WC=1 go test $(GO_TEST_FLAGS) -run '^TestVMVfioWriteCombining$$' -v ./test/vm/

.PHONY: test-boot
test-boot:
	./test/boot/run.sh

# The CNI bundle (minutes, cold) and the Go build share nothing: build them
# side by side, so a first `make demo` waits for the slower one only.
.PHONY: demo
demo: deps
	@$(MAKE) --no-print-directory -j2 build cni-bundle
	go run ./test/demo

.PHONY: clean
clean:
	rm -rf $(BIN)
