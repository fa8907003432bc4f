#pragma once
// Small helpers shared by the libFuzzer harnesses: a private temporary
// directory per process, removed when the process ends, and a reader that
// takes bytes off the front of the fuzz input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace atlas::fuzz {

/// A directory of this process's own under $TMPDIR (or /tmp), created on
/// first use and removed with everything in it at exit.
inline const std::string& temp_dir() {
  struct owned {
    std::string path;
    owned() {
      const char* base = std::getenv("TMPDIR");
      std::string tmpl = std::string{base && *base ? base : "/tmp"} + "/atlas-fuzz-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr)
        std::abort(); // no place to work: nothing to fuzz
      path = tmpl;
    }
    ~owned() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static owned dir;
  return dir.path;
}

/// Consumes the fuzz input from the front.
class input {
public:
  input(const uint8_t* data, size_t size)
    : rest_(reinterpret_cast<const char*>(data), size) {}
  /// One byte (0 when the input is used up).
  uint8_t byte() {
    if (rest_.empty())
      return 0;
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  /// Up to `n` bytes.
  std::string_view take(size_t n) {
    auto out = rest_.substr(0, n);
    rest_.remove_prefix(out.size());
    return out;
  }
  /// Everything left.
  std::string_view rest() {
    auto out = rest_;
    rest_ = {};
    return out;
  }
  bool empty() const { return rest_.empty(); }

private:
  std::string_view rest_;
};

} // namespace atlas::fuzz
