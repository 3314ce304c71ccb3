# Provisions the boot bed's guest image: test/boot/image.sh boots the cached
# Debian bookworm disk (test/packer/mkimage.sh) in QEMU, and this build runs
# the nodeprep provisioner on it over SSH exactly as an AMI build would, then
# installs the bed's stand-ins for kubelet, nodeadm-config and nodeadm-run.
packer {
  required_plugins {
    nodeprep = {
      version = ">= 0.1.0"
      source  = "github.com/nodeprep/nodeprep"
    }
  }
}

variable "ssh_port" { type = number }
variable "ssh_private_key_file" { type = string }
variable "nodeprep_binary" { type = string }
variable "service_file" { type = string }
variable "config_file" { type = string }
variable "cni_bundle_dir" { type = string }
variable "cni_version" { type = string }
variable "guest_dir" { type = string }

source "null" "bed_guest" {
  communicator         = "ssh"
  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "20m"
}

build {
  sources = ["source.null.bed_guest"]

  provisioner "nodeprep" {
    nodeprep_binary = var.nodeprep_binary
    service_file    = var.service_file
    config_file     = var.config_file
    cni_bundle_dir  = var.cni_bundle_dir
    cni_version     = var.cni_version
    # vfio-pci only: the DPDK test binds a hot-plugged NIC behind the vIOMMU.
    skip_igb_uio = true
    # 2 MiB pages are allocated by the agent at run time; the image only
    # sets the default size.
    hugepage_size = "2M"
    # QEMU TCG with interrupt remapping (the vIOMMU the DPDK test needs):
    # the kernel's IO-APIC timer check fails at random under load and
    # panics; test/vm boots with the same argument.
    extra_kernel_args = ["no_timer_check"]
  }

  # D-Bus, as on every EKS AMI: networkctl (the agent's networkd reload) and
  # logind need the system bus, which the minbase base image lacks.
  provisioner "shell" {
    inline = [
      "set -eu",
      "apt-get update -q",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dbus",
      "apt-get clean",
      "mkdir -p /tmp/bed",
    ]
  }

  provisioner "file" {
    source      = "${var.guest_dir}/"
    destination = "/tmp/bed"
  }

  provisioner "shell" {
    inline = [
      "set -eu",
      "install -D -m 0755 /tmp/bed/record-start /usr/local/lib/bed/record-start",
      "install -m 0644 /tmp/bed/cluster-ca.crt /tmp/bed/kubelet-kubeconfig /tmp/bed/watch-kubeconfig /usr/local/lib/bed/",
      "install -m 0644 /tmp/bed/kubelet.service /tmp/bed/nodeadm-run.service /tmp/bed/nodeadm-config.service /tmp/bed/bed-ready.service /etc/systemd/system/",
      "install -D -m 0644 /tmp/bed/nodeprep-bed.conf /etc/systemd/system/nodeprep.service.d/10-bed.conf",
      "install -D -m 0644 /tmp/bed/nodeprep-bed.conf /etc/systemd/system/nodeprep-watch.service.d/10-bed.conf",
      "install -D -m 0644 /tmp/bed/nodeprep-watch-bed.conf /etc/systemd/system/nodeprep-watch.service.d/20-bed-kubeapi.conf",
      "rm -rf /tmp/bed",
      "systemctl daemon-reload",
      "systemctl enable kubelet.service nodeadm-run.service nodeadm-config.service bed-ready.service",
      # The provisioner enabled nodeprep before the stand-ins existed; its
      # RequiredBy= must still make kubelet require it.
      "test \"$(systemctl show -p Requires --value kubelet.service | tr ' ' '\\n' | grep -cx nodeprep.service)\" = 1",
    ]
  }
}
