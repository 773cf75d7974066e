// Small helpers around OpenSSL's C API for src/security: owning pointers and
// turning OpenSSL's error queue into a Status a user can read.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "wavekv/status.h"

namespace wavekv::security {

template <auto Free>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;

// "<what>: <OpenSSL's reasons, oldest first>", and empties the queue so the
// next failure does not report this one's reasons.
inline std::string openssl_reasons(const std::string& what) {
  std::string out = what;
  const char* sep = ": ";
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += sep;
    out += buf;
    sep = "; ";
  }
  return out;
}

inline Status openssl_error(const std::string& what) {
  return Status::invalid(openssl_reasons(what));
}

}  // namespace wavekv::security
