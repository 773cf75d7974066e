// The cluster key and certificate calls of include/wavekv/security.h: thin
// forwards to cluster_key.h and certs.h, so the public header carries no
// OpenSSL type.
#include "security/certs.h"
#include "security/cluster_key.h"
#include "wavekv/security.h"

namespace wavekv {
namespace {

Result<CertFiles> cert_files(Result<security::IssuedFiles> issued) {
  if (!issued) return issued.status();
  return CertFiles{std::move(issued->cert_path), std::move(issued->key_path)};
}

}  // namespace

Result<std::string> generate_cluster_key_file() {
  auto key = security::generate_cluster_key();
  if (!key) return key.status();
  return security::format_cluster_key(*key);
}

Result<CertFiles> init_ca(const CaOptions& o) {
  return cert_files(security::init_ca(o.dir, o.overwrite));
}

Result<CertFiles> issue_node_cert(const NodeCertOptions& o) {
  return cert_files(security::issue_node_cert(o.dir, o.name, o.node_id, o.hosts, o.overwrite));
}

Result<CertFiles> issue_client_cert(const ClientCertOptions& o) {
  return cert_files(security::issue_client_cert(o.dir, o.name, o.overwrite));
}

}  // namespace wavekv
