#pragma once

// multipart/form-data (RFC 7578 over RFC 2046) read incrementally, so that a
// job bundle of up to a gigabyte goes from the socket to disk without ever
// being held in memory. Plain C++: no libuv, no CAF; no exception leaves.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/status.hpp"

namespace atlas {

/// The boundary parameter of a `multipart/form-data` Content-Type value
/// (quoted or not), or nullopt when the type is another one or the boundary
/// is missing or unusable.
std::optional<std::string> multipart_boundary(std::string_view content_type);

/// One part's headers as the client sent them. Untrusted: `filename` may hold
/// anything, including slashes; check it before it touches a path.
struct multipart_part {
  std::string name;         // Content-Disposition `name`
  std::string filename;     // Content-Disposition `filename`; empty for plain fields
  std::string content_type; // the part's own Content-Type, if any
};

/// An incremental multipart parser. Feed it the body in slices of any size
/// (one byte is fine); a boundary split across slices is found all the same,
/// and part data may hold any bytes, CR/LF and boundary-like prefixes included.
///
/// Callbacks run inside feed(), on the caller's thread; one returning false
/// stops the parser (feed() then fails with "aborted"). Part data is handed
/// over in pieces that are only valid during the call. Memory held is bounded
/// by the boundary length plus one part's header block (16 KiB at most).
/// Not thread-safe; one parser per body.
class multipart_parser {
public:
  struct callbacks {
    std::function<bool(const multipart_part&)> on_part_begin;
    std::function<bool(std::string_view)> on_part_data;
    std::function<bool()> on_part_end;
  };

  multipart_parser(std::string_view boundary, callbacks cb);

  /// Consumes `data`. After a failure every later call fails the same way.
  status feed(std::string_view data);

  /// True once the closing boundary was seen (anything after it is ignored).
  bool done() const { return state_ == state::epilogue; }

private:
  enum class state : uint8_t { preamble, after_delimiter, closing_dash, header_lf, headers,
                               body, epilogue };

  size_t scan(std::string_view in);
  size_t emit_until_delimiter(std::string_view window, size_t held);
  bool step(char ch);
  bool begin_part();
  bool fail(std::string message);

  std::string delimiter_; // CRLF "--" boundary
  callbacks cb_;
  state state_ = state::preamble;
  std::string held_;    // a tail that may be the start of a delimiter
  std::string headers_; // the current part's header block
  std::string error_;
};

/// Spools a multipart/form-data body: the first part that has a file name is
/// written to a new file (unique name, mode 0600) in `dir`, created if
/// missing; other parts are read and dropped. Writes are plain blocking
/// write() calls on the caller's thread.
///
/// The spool owns the file until release(): destroying it earlier (a broken
/// connection, a body over its limit) closes and deletes the file. Not
/// thread-safe.
class upload_spool {
public:
  upload_spool(std::string dir, std::string_view boundary);
  ~upload_spool();
  upload_spool(const upload_spool&) = delete;
  upload_spool& operator=(const upload_spool&) = delete;

  /// Consumes the next slice of the body. On failure, disk_error() tells a
  /// file-system problem (the server's fault) from a malformed body.
  status feed(std::string_view data);
  bool disk_error() const { return disk_error_; }

  /// True once the closing boundary was seen.
  bool complete() const { return parser_.done(); }

  /// The spooled file part; empty strings when the body had none.
  const std::string& path() const { return path_; }
  const std::string& filename() const { return filename_; }
  const std::string& field() const { return field_; }

  /// Hands the file over: it is no longer deleted by the destructor.
  void release() { released_ = true; }

private:
  bool open_file(const multipart_part& part);
  bool write_file(std::string_view data);
  bool close_file();

  std::string dir_;
  multipart_parser parser_;
  int fd_ = -1;
  bool writing_ = false; // inside the spooled part
  bool released_ = false;
  bool disk_error_ = false;
  std::string disk_message_;
  std::string path_, filename_, field_;
};

} // namespace atlas
