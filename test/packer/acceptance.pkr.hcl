# Acceptance build for packer-plugin-nodeprep: the null builder connects over
# SSH to a qemu guest (Debian bookworm) that test/packer/run.sh started, and
# the nodeprep provisioner turns it into a DPDK-ready node image.
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
variable "igb_uio_source" { type = string }
variable "igb_uio_sha256" { type = string }
variable "igb_uio_revision" { type = string }
variable "vfio_wc_patch_file" { type = string }
variable "vfio_wc_patch_sha256" { type = string }
variable "vfio_wc_kernels" { type = string }

source "null" "qemu_guest" {
  communicator         = "ssh"
  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  # TCG boots slowly; the SSH communicator retries until the guest's sshd answers.
  ssh_timeout = "20m"
}

build {
  sources = ["source.null.qemu_guest"]

  provisioner "nodeprep" {
    nodeprep_binary  = var.nodeprep_binary
    service_file     = var.service_file
    config_file      = var.config_file
    cni_bundle_dir   = var.cni_bundle_dir
    cni_version      = var.cni_version
    igb_uio_source   = var.igb_uio_source
    igb_uio_sha256   = var.igb_uio_sha256
    igb_uio_revision = var.igb_uio_revision
    # Write-combining vfio-pci for every installed kernel, from that kernel's
    # linux-source package (the bed's local apt repository stands in for the
    # Debian mirror) and the project's patch for Debian's 6.1 (test/vm/testdata);
    # vfio.ko rebuilt with no-IOMMU mode, which Debian's config leaves out.
    vfio_wc_patch_file   = var.vfio_wc_patch_file
    vfio_wc_patch_sha256 = var.vfio_wc_patch_sha256
    vfio_wc_kernels      = var.vfio_wc_kernels
    vfio_unsafe_noiommu  = true
    igb_uio_wc_activate   = true
    hugepages             = 1
    isolcpus              = "1"
  }
}
