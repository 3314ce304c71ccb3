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

# The recommended EKS-optimized AL2023 AMI for this Kubernetes version.
data "amazon-parameterstore" "eks_ami" {
  name   = "/aws/service/eks/optimized-ami/${var.kubernetes_version}/amazon-linux-2023/x86_64/standard/recommended/image_id"
  region = var.region
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "eks_dpdk" {
  region        = var.region
  source_ami    = data.amazon-parameterstore.eks_ami.value
  instance_type = var.instance_type
  ssh_username  = "ec2-user"
  ami_name      = "eks-${var.kubernetes_version}-al2023-nodeprep-${local.timestamp}"
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

    hugepage_size = "1G"
    hugepages     = var.hugepages_1g
    iommu_args    = ["intel_iommu=on", "iommu=pt"]
    isolcpus      = var.isolcpus

    mask_udev_rules = ["99-vpc-policy-routes.rules"]
  }
}
