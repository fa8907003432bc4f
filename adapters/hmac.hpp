#pragma once

// HMAC-SHA256 with OpenSSL 3 (EVP_MAC): how a webhook receiver checks that a
// notification came from this cluster (library/notifier.hpp). No CAF here.
// Thread-safe; nothing throws.

#include <string>
#include <string_view>

namespace atlas {

/// The lower-case hex HMAC-SHA256 of `data` keyed with `key` (64 characters),
/// or "" when OpenSSL fails (which it does not for these inputs).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

} // namespace atlas
