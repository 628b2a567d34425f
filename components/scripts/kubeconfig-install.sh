#!/bin/bash
# Cloud Assistant command: writes the cluster's kubeconfig for root, readable by root only.
# KUBECONFIG_VALUE is an OOS encrypted-parameter reference that Cloud Assistant resolves on the
# instance at run time; the command text stored in the cloud only holds the reference.
set -euo pipefail
umask 077
install -d -m 0700 /root/.kube
printf '%s\n' "$KUBECONFIG_VALUE" >/root/.kube/config.new
mv /root/.kube/config.new /root/.kube/config
echo "kubeconfig installed"
