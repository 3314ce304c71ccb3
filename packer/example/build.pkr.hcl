# EKS worker AMI for Multus + DPDK: the EKS-optimized Amazon Linux 2023 AMI
# with nodeprep, its CNI bundle, igb_uio for the AMI's kernel, 1Gi hugepage and
# IOMMU kernel arguments, and the amazon-ec2-net-utils udev rule masked.
packer {
  required_version = ">= 1.11.0"
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
    nodeprep = {
      version = ">= 0.1.0"
      source  = "github.com/nodeprep/nodeprep"
    }
  }
}

# The recommended EKS-optimized AL2023 AMI for this Kubernetes version and
# architecture (EKS publishes x86_64 and arm64 under the same path).
data "amazon-parameterstore" "eks_ami" {
  name   = "/aws/service/eks/optimized-ami/${var.kubernetes_version}/amazon-linux-2023/${var.architecture}/standard/recommended/image_id"
  region = var.region
}

locals {
  timestamp     = regex_replace(timestamp(), "[- TZ:]", "")
  instance_type = var.instance_type != "" ? var.instance_type : (var.architecture == "arm64" ? "c6gn.xlarge" : "c6i.xlarge")
}

source "amazon-ebs" "eks_dpdk" {
  region        = var.region
  source_ami    = data.amazon-parameterstore.eks_ami.value
  instance_type = local.instance_type
  ssh_username  = "ec2-user"
  ami_name      = "eks-${var.kubernetes_version}-al2023-${var.architecture}-nodeprep-${local.timestamp}"
  subnet_id     = var.subnet_id

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tags = {
    Name              = "eks-${var.kubernetes_version}-al2023-nodeprep"
    source_ami        = "{{ .SourceAMI }}"
    kubernetes        = var.kubernetes_version
    nodeprep_revision = var.nodeprep_revision
  }
}

build {
  sources = ["source.amazon-ebs.eks_dpdk"]

  provisioner "nodeprep" {
    nodeprep_binary = var.nodeprep_binary
    service_file    = "${path.root}/../../systemd/nodeprep.service"
    # Baked config: the agent reads it before user data, so bake only what is
    # true for every node built from this AMI. Empty: none.
    config_file = var.baked_config_file

    cni_bundle_dir = var.cni_bundle_dir
    cni_version    = var.cni_version

    # dpdk-kmods pinned by revision and checksum (see README.md).
    igb_uio_source   = var.dpdk_kmods_tarball
    igb_uio_sha256   = var.dpdk_kmods_sha256
    igb_uio_revision = var.dpdk_kmods_revision

    # Write-combining vfio-pci (ENA LLQ) for every kernel in the AMI, from
    # that kernel's source rpm and amzn-drivers' patch at a pinned revision;
    # vfio.ko is rebuilt with no-IOMMU support (most instances have no IOMMU).
    vfio_wc_amzn_drivers_revision     = var.vfio_wc_amzn_drivers_revision
    vfio_wc_allow_unsupported_kernels = var.vfio_wc_allow_unsupported_kernels
    vfio_unsafe_noiommu               = true

    hugepage_size = "1G"
    hugepages     = var.hugepages_1g
    # iommu_args left unset: the architecture's (intel_iommu=on iommu=pt on x86_64).
    isolcpus = var.isolcpus

    mask_udev_rules = ["99-vpc-policy-routes.rules"]
  }
}
