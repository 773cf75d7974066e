#include "security/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "security/openssl_util.h"

namespace wavekv::security {
namespace {

// Names end up in file names and certificate subjects: no path separators,
// nothing a shell or OpenSSL's config syntax would read specially.
Status check_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-')
    return Status::invalid("name '" + name +
                           "' must be 1 to 64 characters and not start with '.' or '-'");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return Status::invalid("name '" + name + "' may hold only letters, digits, '.', '_', '-'");
  }
  return Status::ok();
}

// "IP:<address>" or "DNS:<name>" for one --host value.
Result<std::string> host_san(std::string host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned char addr[16];
  if (::inet_pton(AF_INET, host.c_str(), addr) == 1 ||
      ::inet_pton(AF_INET6, host.c_str(), addr) == 1)
    return "IP:" + host;
  if (host.empty() || host.size() > 253)
    return Status::invalid("host '" + host + "' is not an IP address or a DNS name");
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-')
      return Status::invalid("host '" + host + "' is not an IP address or a DNS name");
  }
  return "DNS:" + host;
}

Status check_absent(const std::vector<std::string>& paths, bool overwrite) {
  if (overwrite) return Status::ok();
  for (const auto& p : paths) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(p, ec)))
      return Status::invalid(p +
                             " already exists; refusing to overwrite it (give --overwrite "
                             "to replace it)");
  }
  return Status::ok();
}

Status ensure_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    if (std::filesystem::is_directory(dir)) return Status::ok();
    return Status::invalid(dir + " exists and is not a directory");
  }
  return Status::io_error("cannot create " + dir + ": " + std::strerror(errno));
}

// Writes through a temp file, fsync and rename, with exactly `mode` (the
// umask cannot widen or narrow it), so a crash leaves the old file or the new.
Status write_file(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Status::io_error("cannot create " + tmp + ": " + std::strerror(errno));
  int err = ::fchmod(fd, mode) == 0 ? 0 : errno;
  for (size_t done = 0; err == 0 && done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err == 0) return Status::ok();
  ::unlink(tmp.c_str());
  return Status::io_error("cannot write " + path + ": " + std::strerror(err));
}

std::string pem_of_key(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string pem_of_cert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// The key first, so no certificate ever exists without its key.
Status write_pair(const IssuedFiles& files, X509* cert, EVP_PKEY* key) {
  WAVEKV_RETURN_IF_ERROR(write_file(files.key_path, pem_of_key(key), 0600));
  return write_file(files.cert_path, pem_of_cert(cert), 0644);
}

Status add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return openssl_error("bad certificate extension '" + value + "'");
  int rc = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return rc == 1 ? Status::ok() : openssl_error("cannot add extension '" + value + "'");
}

Status set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return openssl_error("RAND_bytes");
  bytes[0] &= 0x7f;  // a serial number is a positive integer
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  bool ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok ? Status::ok() : openssl_error("cannot set the serial number");
}

// A v3 certificate for `key` named O=wavekv, CN=`cn`, issued by `issuer`
// (null: itself), not yet signed. Valid from an hour ago, for clock skew.
Result<X509Ptr> new_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, int days) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return openssl_error("X509_new");
  WAVEKV_RETURN_IF_ERROR(set_random_serial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto* o = reinterpret_cast<const unsigned char*>("wavekv");
  auto* c = reinterpret_cast<const unsigned char*>(cn.c_str());
  bool ok = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, o, -1, -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, c, -1, -1, 0) == 1 &&
            X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) != nullptr &&
            X509_set_pubkey(cert.get(), key) == 1;
  if (!ok) return openssl_error("cannot fill in the certificate for " + cn);
  return cert;
}

struct Ca {
  X509Ptr cert;
  PKeyPtr key;
};

Result<Ca> load_ca(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(ca_key_path(dir), ec) ||
      !std::filesystem::exists(ca_cert_path(dir), ec))
    return Status::not_found("no CA in " + dir +
                             " (ca.crt and ca.key): run `wavekv cert init-ca --dir " + dir +
                             "` first");
  Ca ca;
  BioPtr key_bio(BIO_new_file(ca_key_path(dir).c_str(), "r"));
  if (key_bio) ca.key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca.key) return openssl_error("cannot read the CA key " + ca_key_path(dir));
  BioPtr cert_bio(BIO_new_file(ca_cert_path(dir).c_str(), "r"));
  if (cert_bio) ca.cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!ca.cert) return openssl_error("cannot read the CA certificate " + ca_cert_path(dir));
  if (X509_check_private_key(ca.cert.get(), ca.key.get()) != 1)
    return openssl_error(ca_key_path(dir) + " is not the key of " + ca_cert_path(dir));
  return ca;
}

Result<PKeyPtr> new_key() {
  PKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return openssl_error("cannot generate an EC P-256 key");
  return key;
}

// A leaf certificate for `cn` with the extensions `sans` (may be empty) and
// `eku`, signed by the CA, written as `files`.
Status issue_leaf(const Ca& ca, const std::string& cn, const std::string& sans,
                  const std::string& eku, const IssuedFiles& files) {
  auto key = new_key();
  if (!key) return key.status();
  auto cert = new_cert(cn, key->get(), ca.cert.get(), kCertValidDays);
  if (!cert) return cert.status();
  X509* c = cert->get();
  WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_key_usage, "critical,digitalSignature"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_ext_key_usage, eku));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_subject_key_identifier, "hash"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_authority_key_identifier, "keyid"));
  if (!sans.empty()) WAVEKV_RETURN_IF_ERROR(add_ext(c, ca.cert.get(), NID_subject_alt_name, sans));
  if (X509_sign(c, ca.key.get(), EVP_sha256()) <= 0)
    return openssl_error("cannot sign the certificate for " + cn);
  return write_pair(files, c, key->get());
}

}  // namespace

std::string ca_cert_path(const std::string& dir) { return dir + "/ca.crt"; }
std::string ca_key_path(const std::string& dir) { return dir + "/ca.key"; }

Result<IssuedFiles> init_ca(const std::string& dir, bool overwrite) {
  IssuedFiles files{ca_cert_path(dir), ca_key_path(dir)};
  WAVEKV_RETURN_IF_ERROR(ensure_dir(dir));
  WAVEKV_RETURN_IF_ERROR(check_absent({files.cert_path, files.key_path}, overwrite));
  auto key = new_key();
  if (!key) return key.status();
  auto cert = new_cert("wavekv CA", key->get(), nullptr, kCaValidDays);
  if (!cert) return cert.status();
  X509* c = cert->get();
  // pathlen:0: the CA signs leaves only, never an intermediate CA.
  WAVEKV_RETURN_IF_ERROR(add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, c, NID_subject_key_identifier, "hash"));
  WAVEKV_RETURN_IF_ERROR(add_ext(c, c, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(c, key->get(), EVP_sha256()) <= 0) return openssl_error("cannot sign the CA");
  WAVEKV_RETURN_IF_ERROR(write_pair(files, c, key->get()));
  return files;
}

Result<IssuedFiles> issue_node_cert(const std::string& dir, const std::string& name,
                                    uint64_t node_id, const std::vector<std::string>& hosts,
                                    bool overwrite) {
  WAVEKV_RETURN_IF_ERROR(check_name(name));
  if (node_id == 0) return Status::invalid("the node id must not be 0");
  if (hosts.empty())
    return Status::invalid("give at least one host: the names and addresses peers dial");
  std::string sans;
  for (const auto& h : hosts) {
    auto san = host_san(h);
    if (!san) return san.status();
    sans += *san + ",";
  }
  sans += "URI:" + std::string(kNodeIdUriPrefix) + std::to_string(node_id);
  IssuedFiles files{dir + "/node." + name + ".crt", dir + "/node." + name + ".key"};
  WAVEKV_RETURN_IF_ERROR(check_absent({files.cert_path, files.key_path}, overwrite));
  auto ca = load_ca(dir);
  if (!ca) return ca.status();
  WAVEKV_RETURN_IF_ERROR(issue_leaf(*ca, name, sans, "serverAuth,clientAuth", files));
  return files;
}

Result<IssuedFiles> issue_client_cert(const std::string& dir, const std::string& name,
                                      bool overwrite) {
  WAVEKV_RETURN_IF_ERROR(check_name(name));
  IssuedFiles files{dir + "/client." + name + ".crt", dir + "/client." + name + ".key"};
  WAVEKV_RETURN_IF_ERROR(check_absent({files.cert_path, files.key_path}, overwrite));
  auto ca = load_ca(dir);
  if (!ca) return ca.status();
  WAVEKV_RETURN_IF_ERROR(issue_leaf(*ca, name, "", "clientAuth", files));
  return files;
}

Result<uint64_t> node_id_of(X509* cert) {
  if (cert == nullptr) return Status::invalid("no certificate");
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  int found = 0;
  uint64_t id = 0;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
    std::string_view s(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<size_t>(ASN1_STRING_length(uri)));
    if (!s.starts_with(kNodeIdUriPrefix)) continue;
    if (++found > 1) return Status::invalid("the certificate binds more than one node id");
    std::string_view digits = s.substr(kNodeIdUriPrefix.size());
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    bool all_digits = digits.find_first_not_of("0123456789") == std::string_view::npos;
    if (ec != std::errc() || end != digits.data() + digits.size() || !all_digits || id == 0)
      return Status::invalid("the certificate's node id URI '" + std::string(s) +
                             "' does not end in a decimal id from 1 to 2^64-1");
  }
  if (found == 0)
    return Status::invalid("the certificate binds no node id (no " + std::string(kNodeIdUriPrefix) +
                           "<id> URI SAN): not a node certificate");
  return id;
}

Result<uint64_t> node_id_of_file(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return Status::not_found("cannot read certificate file " + path);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status::invalid("certificate file " + path + " holds no PEM certificate");
  auto id = node_id_of(cert.get());
  if (!id) return Status::invalid(path + ": " + id.status().message());
  return id;
}

Result<std::string> common_name_of(X509* cert) {
  if (cert == nullptr) return Status::invalid("no certificate");
  X509_NAME* subject = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0) return Status::invalid("the certificate's subject has no common name");
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
  if (n < 0) return openssl_error("cannot read the common name");
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return cn;
}

}  // namespace wavekv::security
