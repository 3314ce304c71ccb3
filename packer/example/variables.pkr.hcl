variable "region" {
  type    = string
  default = "us-west-2"
}

variable "kubernetes_version" {
  type    = string
  default = "1.31"
}

variable "architecture" {
  type        = string
  default     = "x86_64"
  description = "x86_64 or arm64 (Graviton): picks the EKS AMI's SSM parameter; the agent and CNI bundle must be built for it (make build-arm64, make cni-bundle-arm64)."
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "The architecture must be x86_64 or arm64."
  }
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "Build instance type; empty: c6i.xlarge for x86_64, c6gn.xlarge for arm64."
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Subnet for the build instance; the default VPC when null."
}

variable "nodeprep_binary" {
  type        = string
  description = "The agent, built with: CGO_ENABLED=0 go build -o bin/nodeprep ./agent"
  default     = "../../bin/nodeprep"
}

variable "baked_config_file" {
  type        = string
  default     = ""
  description = "Node-independent nodeprep config baked as /etc/nodeprep/config.yaml; empty bakes none."
}

variable "nodeprep_revision" {
  type    = string
  default = "dev"
}

variable "cni_bundle_dir" {
  type        = string
  description = "Directory holding the CNI plugins and their SHA256SUMS."
}

variable "cni_version" {
  type        = string
  description = "Names /opt/nodeprep/cni/<version>/ on the image."
}

variable "dpdk_kmods_tarball" {
  type        = string
  description = "dpdk-kmods source tarball (any layout with igb_uio.c next to its Kbuild)."
}

variable "dpdk_kmods_sha256" {
  type = string
}

variable "dpdk_kmods_revision" {
  type        = string
  description = "The dpdk-kmods commit or Debian version the tarball holds."
}

variable "hugepages_1g" {
  type        = number
  default     = 4
  description = "1Gi pages reserved at boot (0 leaves the count to the agent)."
}

variable "isolcpus" {
  type    = string
  default = ""
}

variable "vfio_wc_amzn_drivers_revision" {
  type        = string
  default     = "e3092d5acc66e4d44307434551ecca6ec952412c"
  description = "amzn-drivers revision whose enav2-vfio-patch builds write-combining vfio-pci for each installed kernel (see packer/README.md for the kernels it serves)."
}

variable "vfio_wc_allow_unsupported_kernels" {
  type        = bool
  default     = false
  description = "Keep stock vfio-pci (no write combining: ENA LLQ slow) on kernels the patches do not serve, instead of failing the build."
}
