#include "adapters/multipart.hpp"

#include "adapters/http_wire.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

namespace atlas {

namespace {

using http_wire::lower;
using http_wire::trim;

constexpr size_t max_part_headers = 16 << 10;
constexpr size_t max_boundary = 200; // RFC 2046 says 70; some clients are generous

// A header value of the form `type; key=value; key="quoted value"`.
struct parameterized {
  std::string type; // lower case
  std::vector<std::pair<std::string, std::string>> params; // keys in lower case

  const std::string* find(std::string_view key) const {
    for (auto& [k, v] : params)
      if (k == key)
        return &v;
    return nullptr;
  }
};

parameterized parse_parameterized(std::string_view v) {
  parameterized out;
  size_t i = v.find(';');
  out.type = lower(trim(v.substr(0, i)));
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ';' || v[i] == ' ' || v[i] == '\t'))
      ++i;
    size_t start = i;
    while (i < v.size() && v[i] != '=' && v[i] != ';')
      ++i;
    std::string key = lower(trim(v.substr(start, i - start)));
    std::string val;
    if (i < v.size() && v[i] == '=') {
      ++i;
      while (i < v.size() && (v[i] == ' ' || v[i] == '\t'))
        ++i;
      if (i < v.size() && v[i] == '"') {
        // Only \" and \\ are escapes: browsers send Windows paths unescaped.
        for (++i; i < v.size() && v[i] != '"'; ++i) {
          if (v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\'))
            ++i;
          val += v[i];
        }
        ++i; // the closing quote
      } else {
        start = i;
        while (i < v.size() && v[i] != ';')
          ++i;
        val = trim(v.substr(start, i - start));
      }
    }
    if (!key.empty())
      out.params.emplace_back(std::move(key), std::move(val));
  }
  return out;
}

multipart_part parse_part_headers(std::string_view block) {
  multipart_part part;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      const auto disposition = parse_parameterized(value);
      if (auto* n = disposition.find("name"))
        part.name = *n;
      if (auto* f = disposition.find("filename"))
        part.filename = *f;
    } else if (name == "content-type") {
      part.content_type = value;
    }
  }
  return part;
}

} // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const auto ct = parse_parameterized(content_type);
  if (ct.type != "multipart/form-data")
    return std::nullopt;
  const std::string* b = ct.find("boundary");
  if (b == nullptr || b->empty() || b->size() > max_boundary)
    return std::nullopt;
  return *b;
}

// -- multipart_parser ---------------------------------------------------------

multipart_parser::multipart_parser(std::string_view boundary, callbacks cb)
  : delimiter_("\r\n--" + std::string{boundary}), cb_(std::move(cb)) {
  // The first boundary may open the body without a CRLF before it: pretend
  // one was there, so that every delimiter looks the same.
  held_ = "\r\n";
}

status multipart_parser::feed(std::string_view data) {
  while (!data.empty() && error_.empty()) {
    size_t used = data.size(); // the epilogue is ignored
    if (state_ == state::preamble || state_ == state::body) {
      used = scan(data);
    } else if (state_ != state::epilogue) {
      // Between parts there are only a few bytes: a byte at a time is fine.
      used = 1;
      step(data.front());
    }
    data.remove_prefix(used);
  }
  return error_.empty() ? status::success() : status::fail(error_);
}

size_t multipart_parser::scan(std::string_view in) {
  if (held_.empty())
    return emit_until_delimiter(in, 0);
  // A possible delimiter start is held back: decide it together with no more
  // new bytes than a delimiter is long, so the copy stays small.
  const size_t take = std::min(in.size(), delimiter_.size());
  std::string window = std::move(held_);
  held_.clear();
  const size_t held = window.size();
  window.append(in.substr(0, take));
  return emit_until_delimiter(window, held);
}

// `window` is `held` bytes kept from earlier slices followed by new bytes.
// Returns how many of the new bytes were used.
size_t multipart_parser::emit_until_delimiter(std::string_view window, size_t held) {
  auto emit = [this](std::string_view data) {
    if (state_ == state::body && !data.empty() && !cb_.on_part_data(data))
      fail("aborted");
  };
  const size_t pos = window.find(delimiter_);
  if (pos != std::string_view::npos) {
    emit(window.substr(0, pos));
    if (error_.empty() && state_ == state::body && !cb_.on_part_end())
      fail("aborted");
    state_ = state::after_delimiter;
    return pos + delimiter_.size() - held; // held bytes never hold a whole delimiter
  }
  // Keep back the longest tail that could still grow into a delimiter.
  const std::string_view d{delimiter_};
  size_t keep = std::min(window.size(), d.size() - 1);
  while (keep > 0 && (window[window.size() - keep] != '\r' ||
                      window.substr(window.size() - keep) != d.substr(0, keep)))
    --keep;
  emit(window.substr(0, window.size() - keep));
  held_.assign(window.substr(window.size() - keep));
  return window.size() - held;
}

bool multipart_parser::step(char ch) {
  switch (state_) {
    case state::after_delimiter:
      // "--" closes the body; otherwise optional padding, then CRLF.
      if (ch == '-')
        state_ = state::closing_dash;
      else if (ch == '\r')
        state_ = state::header_lf;
      else if (ch != ' ' && ch != '\t')
        return fail("malformed multipart boundary line");
      return true;
    case state::closing_dash:
      if (ch != '-')
        return fail("malformed multipart closing boundary");
      state_ = state::epilogue;
      return true;
    case state::header_lf:
      if (ch != '\n')
        return fail("malformed multipart boundary line");
      state_ = state::headers;
      headers_.clear();
      return true;
    case state::headers:
      headers_ += ch;
      if (headers_.size() > max_part_headers)
        return fail("multipart part headers too large");
      if (headers_ == "\r\n" || headers_.ends_with("\r\n\r\n"))
        return begin_part();
      return true;
    default:
      return true;
  }
}

bool multipart_parser::begin_part() {
  const multipart_part part = parse_part_headers(headers_);
  headers_.clear();
  state_ = state::body;
  if (!cb_.on_part_begin(part))
    return fail("aborted");
  return true;
}

bool multipart_parser::fail(std::string message) {
  if (error_.empty())
    error_ = std::move(message);
  return false;
}

// -- upload_spool -------------------------------------------------------------

upload_spool::upload_spool(std::string dir, std::string_view boundary)
  : dir_(std::move(dir)),
    parser_(boundary, {[this](const multipart_part& p) { return open_file(p); },
                       [this](std::string_view d) { return !writing_ || write_file(d); },
                       [this] { return close_file(); }}) {}

upload_spool::~upload_spool() {
  if (fd_ >= 0)
    ::close(fd_);
  if (!released_ && !path_.empty())
    ::unlink(path_.c_str());
}

status upload_spool::feed(std::string_view data) {
  auto result = parser_.feed(data);
  if (!result.ok() && disk_error_)
    return status::fail(disk_message_);
  return result;
}

bool upload_spool::open_file(const multipart_part& part) {
  if (!path_.empty() || part.filename.empty())
    return true; // only the first file part is kept
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  std::string name = (dir_.empty() ? std::string{"."} : dir_) + "/upload-XXXXXX";
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    disk_error_ = true;
    disk_message_ = "cannot create upload file in " + dir_ + ": " + std::strerror(errno);
    return false;
  }
  fd_ = fd;
  path_ = std::move(name);
  filename_ = part.filename;
  field_ = part.name;
  writing_ = true;
  return true;
}

bool upload_spool::write_file(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      disk_error_ = true;
      disk_message_ = "cannot write " + path_ + ": " + std::strerror(n < 0 ? errno : EIO);
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool upload_spool::close_file() {
  if (!writing_)
    return true;
  writing_ = false;
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) { // a late write error can surface here
    disk_error_ = true;
    disk_message_ = "cannot write " + path_ + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

} // namespace atlas
