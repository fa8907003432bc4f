#include "adapters/hmac.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace atlas {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // An empty key is a valid HMAC key; OpenSSL wants a non-null pointer for it.
  static const unsigned char none = 0;
  const void* k = key.empty() ? static_cast<const void*>(&none) : key.data();
  if (HMAC(EVP_sha256(), k, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) == nullptr)
    return {};
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  text.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    text += hex[out[i] >> 4];
    text += hex[out[i] & 15];
  }
  return text;
}

} // namespace atlas
