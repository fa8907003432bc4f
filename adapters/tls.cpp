// TLS for the cluster's links with OpenSSL 3: contexts from PEM files,
// sessions over memory BIOs (the event loop owns the sockets), and the
// small CA that signs each node's certificate.

#include "adapters/tls.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace atlas {

namespace {

std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;

std::string subject_field(X509* cert, int nid) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

/// Writes `text` to `path` through a temporary file, `mode` from the start.
status write_file(const std::string& path, const std::string& text, mode_t mode) {
  auto tmp = path + ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return status::fail("cannot write " + path + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return status::fail("cannot write " + path + ": " + std::strerror(errno));
  }
  return status::success();
}

template <class F>
std::string to_pem(F write) {
  std::unique_ptr<BIO, deleter<BIO, BIO_free_all>> bio{BIO_new(BIO_s_mem())};
  if (!bio || write(bio.get()) != 1)
    return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

pkey_ptr new_key() {
  return pkey_ptr{EVP_EC_gen("P-256")};
}

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr)
    return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

/// A certificate for `key` named (CN, OU), valid `seconds`; self-signed when
/// `issuer` is null.
x509_ptr make_cert(EVP_PKEY* key, const std::string& cn, const std::string& ou, long seconds,
                   X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  x509_ptr cert{X509_new()};
  if (!cert)
    return nullptr;
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f; // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300); // clocks drift a little
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), seconds);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto text = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.c_str()); };
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, text(cn), -1, -1, 0);
  if (!ou.empty())
    X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, text(ou), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  bool ok = ca ? add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")
                   && add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign")
              : add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE")
                  && add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature")
                  && add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  ok = ok && add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (!ok || X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0)
    return nullptr;
  return cert;
}

void close_file(FILE* f) {
  std::fclose(f);
}
using file_ptr = std::unique_ptr<FILE, deleter<FILE, close_file>>;

pkey_ptr read_key(const std::string& path) {
  file_ptr f{std::fopen(path.c_str(), "r")};
  return f ? pkey_ptr{PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr)} : nullptr;
}

x509_ptr read_cert(const std::string& path) {
  file_ptr f{std::fopen(path.c_str(), "r")};
  return f ? x509_ptr{PEM_read_X509(f.get(), nullptr, nullptr, nullptr)} : nullptr;
}

/// A key (0600) and its certificate as PEM files. The key first: a
/// certificate without its key is of no use to anyone.
status write_pair(EVP_PKEY* key, X509* cert, const std::string& key_path,
                  const std::string& cert_path) {
  auto key_pem = to_pem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
  auto cert_pem = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert); });
  if (auto st = write_file(key_path, key_pem, 0600); !st)
    return st;
  return write_file(cert_path, cert_pem, 0644);
}

} // namespace

// -- context ---------------------------------------------------------------------

std::shared_ptr<tls_context> tls_context::make(const tls_files& files, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) {
    error = openssl_error();
    return nullptr;
  }
  std::shared_ptr<tls_context> out{new tls_context(ctx)};
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_num_tickets(ctx, 0); // no resumption: every link shows its certificate
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, files.ca_cert.c_str(), nullptr) != 1) {
    error = "cannot load the cluster CA " + files.ca_cert + ": " + openssl_error();
    return nullptr;
  }
  // The CA names a client may choose its certificate by: only ours.
  SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(files.ca_cert.c_str()));
  if (SSL_CTX_use_certificate_file(ctx, files.cert.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load the certificate " + files.cert + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1
      || SSL_CTX_check_private_key(ctx) != 1) {
    error = "cannot load the key " + files.key + " (or it does not match " + files.cert
            + "): " + openssl_error();
    return nullptr;
  }
  return out;
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

// -- session ---------------------------------------------------------------------

tls_session::tls_session(std::shared_ptr<tls_context> ctx, bool server)
  : ctx_(std::move(ctx)), server_(server) {
  ssl_ = SSL_new(ctx_->raw());
  if (ssl_ == nullptr)
    return;
  SSL_set_bio(ssl_, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  if (server_)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

tls_session::~tls_session() {
  if (ssl_ != nullptr)
    SSL_free(ssl_);
}

status tls_session::failure(int rc, std::string_view during) {
  int e = SSL_get_error(ssl_, rc);
  std::string why = e == SSL_ERROR_SSL ? openssl_error() : "TLS error " + std::to_string(e);
  if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK)
    why = std::string("certificate refused: ") + X509_verify_cert_error_string(v);
  else if (why.find(" alert ") != std::string::npos)
    why = "the peer refused this side's certificate (" + why + ")";
  return status::fail(std::string(during) + ": " + why);
}

status tls_session::drain(std::string& to_peer) {
  BIO* out = SSL_get_wbio(ssl_);
  char buf[16384];
  int n;
  while ((n = BIO_read(out, buf, sizeof buf)) > 0)
    to_peer.append(buf, static_cast<size_t>(n));
  return status::success();
}

status tls_session::start(std::string& to_peer) {
  if (ssl_ == nullptr)
    return status::fail("TLS: out of memory");
  if (server_)
    return status::success();
  int rc = SSL_do_handshake(ssl_);
  if (rc != 1 && SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ)
    return failure(rc, "TLS handshake");
  return drain(to_peer);
}

status tls_session::feed(std::string_view from_peer, std::string& plain, std::string& to_peer) {
  if (ssl_ == nullptr)
    return status::fail("TLS: out of memory");
  BIO* in = SSL_get_rbio(ssl_);
  while (!from_peer.empty()) {
    int n = BIO_write(in, from_peer.data(), static_cast<int>(std::min<size_t>(from_peer.size(), 1 << 20)));
    if (n <= 0)
      return status::fail("TLS: out of memory");
    from_peer.remove_prefix(static_cast<size_t>(n));
  }
  if (!established_) {
    int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      drain(to_peer); // an alert tells the peer why
      if (SSL_get_error(ssl_, rc) == SSL_ERROR_WANT_READ)
        return status::success();
      return failure(rc, "TLS handshake");
    }
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (cert == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK)
      return status::fail("TLS handshake: the peer showed no valid certificate");
    peer_ = {subject_field(cert, NID_commonName), subject_field(cert, NID_organizationalUnitName),
             true};
    established_ = true;
  }
  char buf[65536];
  for (;;) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ)
      break;
    if (e == SSL_ERROR_ZERO_RETURN)
      return status::fail("TLS: the peer closed the session");
    drain(to_peer);
    return failure(n, "TLS read");
  }
  return drain(to_peer);
}

status tls_session::write(std::string_view plain, std::string& to_peer) {
  if (!established_)
    return status::fail("TLS: write before the handshake completed");
  while (!plain.empty()) {
    int n = SSL_write(ssl_, plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 20)));
    if (n <= 0)
      return failure(n, "TLS write");
    plain.remove_prefix(static_cast<size_t>(n));
    drain(to_peer);
  }
  return status::success();
}

// -- the cluster CA --------------------------------------------------------------

status make_cluster_ca(const std::string& key_path, const std::string& cert_path) {
  std::error_code ec;
  if (std::filesystem::exists(key_path, ec) || std::filesystem::exists(cert_path, ec))
    return status::fail("the cluster CA exists already (" + key_path + ")");
  auto key = new_key();
  auto cert = key ? make_cert(key.get(), "Atlas cluster CA", "ca", 3650L * 86400, nullptr, nullptr, true)
                  : nullptr;
  if (!cert)
    return status::fail("cannot create the cluster CA: " + openssl_error());
  return write_pair(key.get(), cert.get(), key_path, cert_path);
}

status issue_certificate(const tls_files& ca, const std::string& name, const std::string& role,
                         long seconds, const std::string& key_out, const std::string& cert_out) {
  auto ca_key = read_key(ca.key);
  if (!ca_key)
    return status::fail("cannot read the cluster CA key " + ca.key + ": " + openssl_error());
  auto ca_cert = read_cert(ca.ca_cert);
  if (!ca_cert)
    return status::fail("cannot read the cluster CA " + ca.ca_cert + ": " + openssl_error());
  auto key = new_key();
  auto cert = key ? make_cert(key.get(), name, role, seconds, ca_cert.get(), ca_key.get(), false)
                  : nullptr;
  if (!cert)
    return status::fail("cannot issue a certificate for " + name + ": " + openssl_error());
  return write_pair(key.get(), cert.get(), key_out, cert_out);
}

status read_certificate(const std::string& cert_path, peer_identity& who, long& seconds_left) {
  auto cert = read_cert(cert_path);
  if (!cert)
    return status::fail("cannot read the certificate " + cert_path);
  who = {subject_field(cert.get(), NID_commonName),
         subject_field(cert.get(), NID_organizationalUnitName), true};
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert.get())) != 1)
    return status::fail("cannot read the validity of " + cert_path);
  seconds_left = static_cast<long>(days) * 86400 + secs;
  return status::success();
}

} // namespace atlas
